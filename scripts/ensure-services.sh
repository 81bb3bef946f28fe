#!/usr/bin/env bash
# Make sure the services the test suite talks to are up: PostgreSQL and Redis on 127.0.0.1,
# Debian's chromium for the browser tests and poppler-utils (pdftoppm) for the PDF tests.
# Starts what is installed but stopped; installs
# chromium with apt when missing; names what to install when a server is absent.
set -u
have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""; [ "$(id -u)" -ne 0 ] && have sudo && SUDO="sudo"

pg_up() { have pg_isready && pg_isready -q -h 127.0.0.1 -p 5432; }
redis_up() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }

if [ "${CRM_INSTALL_SERVICES:-0}" = "1" ]; then
  missing=""
  have pg_ctlcluster || missing="$missing postgresql"
  have redis-server || missing="$missing redis-server"
  if [ -n "$missing" ]; then
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
  fi
fi

if ! pg_up; then
  if have pg_ctlcluster && ls /etc/postgresql >/dev/null 2>&1; then
    echo "starting PostgreSQL"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
if ! pg_up; then
  echo "PostgreSQL is not running on 127.0.0.1:5432 and could not be started." >&2
  echo "Install it: apt-get install -y postgresql   (or run with CRM_INSTALL_SERVICES=1)" >&2
  exit 1
fi

if ! redis_up; then
  if have redis-server; then
    echo "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 1 20); do redis_up && break; sleep 0.5; done
  fi
fi
if ! redis_up; then
  echo "Redis is not running on 127.0.0.1:6379 and could not be started." >&2
  echo "Install it: apt-get install -y redis-server   (or run with CRM_INSTALL_SERVICES=1)" >&2
  exit 1
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser tests"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium is missing: apt-get install -y chromium" >&2
  exit 1
fi
if ! have pdftoppm; then
  echo "installing Debian's poppler-utils (invoice PDFs turned into pictures in the tests)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq poppler-utils >/dev/null
fi
if ! have pdftoppm; then
  echo "pdftoppm is missing: apt-get install -y poppler-utils" >&2
  exit 1
fi
echo "services ready: PostgreSQL, Redis, chromium, pdftoppm"
