#!/usr/bin/env bash
# Quickstart 2: set up and run the whole test suite against the real servers of this machine.
# It starts what the tests need where it can: redis-server from PATH (installed with apt-get when
# running as root), nginx for the limiter's comparison test, openssl for the TLS Redis test. A server that is still missing makes
# its tests fail under CI=true and skip loudly otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev

as_root() { [ "$(id -u)" = 0 ]; }
apt_install() {
  if as_root && command -v apt-get >/dev/null; then
    [ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >/dev/null && APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  fi
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

command -v redis-server >/dev/null || apt_install redis-server || true
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || apt_install nginx || true
command -v openssl >/dev/null || apt_install openssl || true  # certificates for the TLS Redis test
if ! port_open 6379 && command -v redis-server >/dev/null; then
  echo "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/qaio-test-redis.log
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
[ "$status" = 5 ] && { echo "pytest collected no tests"; exit 1; }
exit "$status"
