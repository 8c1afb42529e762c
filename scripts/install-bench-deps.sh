#!/usr/bin/env bash
# Install the Debian packages the benchmarks use on top of the test suite's
# (scripts/install-test-deps.sh), only those missing: wrk, the C load
# generator of the data endpoint's single-record rows (benchmarks/wrk.py; a
# Python client would measure its own CPU). Idempotent; quiet when present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have wrk || need+=(wrk)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
