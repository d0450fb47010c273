"""What the benchmark scripts read off the machine: a process tree and its CPU from /proc, a file's
size, a free loopback port. Imported as `_procs` by the scripts in bench/ (run as `python3 bench/X.py`)."""

from __future__ import annotations

import contextlib
import glob
import os
import socket
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """pid and all its live descendants, through /proc/<pid>/task/<tid>/children."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for children in glob.glob(f"/proc/{current}/task/*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in Path(children).read_text().split())
    return pids


def cpu_seconds(pids: list[int]) -> float:
    """utime+stime+cutime+cstime summed over pids: the tree's CPU, reaped children included."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += sum(int(value) for value in fields[11:15])
    return ticks / CLK_TCK


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
