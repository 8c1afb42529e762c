#!/usr/bin/env bash
# Install the Debian packages the benchmarks use on top of the test suite's
# (scripts/install-test-deps.sh), only those missing: wrk, the C load
# generator of the data endpoint's single-record rows (benchmarks/wrk.py; a
# Python client would measure its own CPU). Idempotent; quiet when present.
set -euo pipefail

need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
"$(dirname "$0")/apt-install.sh" ${need[@]+"${need[@]}"}
