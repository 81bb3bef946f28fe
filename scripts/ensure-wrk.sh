#!/usr/bin/env bash
# `make bench` drives the load with wrk: install Debian's wrk when it is missing. When it cannot
# be installed the bench still runs, its load coming from a Python client (the table says so).
set -u
have() { command -v "$1" >/dev/null 2>&1; }
SUDO=""; [ "$(id -u)" -ne 0 ] && have sudo && SUDO="sudo"

if ! have wrk; then
  echo "installing Debian's wrk (the load of make bench)"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
if ! have wrk; then
  echo "wrk could not be installed (apt-get install -y wrk): the load comes from the Python client" >&2
fi
exit 0
