"""Real redis-server processes for the Redis tests: single servers on free loopback ports, restartable,
and a 3-master Cluster. Nothing here is faked: each helper runs the redis-server binary."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import redis

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(message: str) -> None:
    """Fail in CI, skip loudly elsewhere: a missing Redis must never pass silently."""
    if CI:
        pytest.fail(message)
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(*, cluster: bool = False) -> int:
    """A free loopback port; a Cluster node also needs port + 10000 (its bus), so at most 55535."""
    if not cluster:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    for _ in range(200):
        port = random.randint(20000, 55000)
        if bindable(port) and bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server in its own directory. `persistent=True` turns on the append-only file
    (fsync always), so a restart keeps every acknowledged write."""

    def __init__(self, folder: Path, *, port: int | None = None, persistent: bool = False, cluster: bool = False):
        if shutil.which("redis-server") is None:
            unavailable("redis-server is not installed; apt-get install redis-server")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(cluster=cluster)
        self.args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.args += ["--dir", str(folder), "--daemonize", "no", "--loglevel", "warning"]
        if persistent:
            self.args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            self.args += ["--appendonly", "no"]
        if cluster:
            self.args += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
            self.args += ["--cluster-node-timeout", "2000"]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                unavailable(f"redis-server on port {self.port} did not start:\n{tail}")
            time.sleep(0.02)
        return self

    def ready(self) -> bool:
        return ping(self.port)

    def kill(self) -> None:
        """SIGKILL: no shutdown save, exactly like a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


class SecureRedisServer(RedisServer):
    """TLS only, with a CA and a server certificate made by openssl, and ACL: the default user is off,
    and user `qaio` (password `s3cret`) may do everything. Its URL uses db 3."""

    USER, PASSWORD = "qaio", "s3cret"

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        if shutil.which("openssl") is None:
            unavailable("openssl is not installed; apt-get install openssl")
        self.ca = folder / "ca.crt"
        _make_certificates(folder)
        self.args[self.args.index("--port") + 1] = "0"
        self.args += ["--tls-port", str(self.port), "--tls-auth-clients", "no"]
        self.args += ["--tls-cert-file", str(folder / "server.crt"), "--tls-key-file", str(folder / "server.key")]
        self.args += ["--tls-ca-cert-file", str(self.ca)]
        self.args += ["--user", "default", "off", "--user", self.USER, "on", f">{self.PASSWORD}", "~*", "&*", "+@all"]

    @property
    def url(self) -> str:
        return f"rediss://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/3?ssl_ca_certs={self.ca}"

    def ready(self) -> bool:
        try:
            with redis.Redis.from_url(self.url, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False


def _make_certificates(folder: Path) -> None:
    """A self-signed CA and a server certificate for 127.0.0.1 signed by it."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=qaio test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    )
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr"
    )
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    )


class RedisCluster:
    """Three masters, no replicas, made with `redis-cli --cluster create`."""

    def __init__(self, folder: Path) -> None:
        self.nodes = [RedisServer(folder / f"node{i}", cluster=True) for i in range(3)]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.nodes[0].port}/0?cluster=1"

    def start(self) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start()
        except BaseException:  # a skip or failure from one node: stop the others before it propagates
            self.stop()
            raise
        addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            timeout=60,
        )
        if created.returncode != 0:
            self.stop()
            unavailable(f"redis-cli --cluster create failed: {created.stdout[-1000:]!r} {created.stderr[-1000:]!r}")
        deadline = time.monotonic() + 20
        while not all(self._ok(node.port) for node in self.nodes):
            if time.monotonic() > deadline:
                self.stop()
                unavailable("the test cluster did not reach cluster_state:ok")
            time.sleep(0.1)
        return self

    @staticmethod
    def _ok(port: int) -> bool:
        info = subprocess.run(["redis-cli", "-p", str(port), "cluster", "info"], capture_output=True, timeout=10)
        return b"cluster_state:ok" in info.stdout

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
