#!/usr/bin/env bash
# Install the Debian packages named as arguments (none: nothing to do), as
# root or through sudo, quietly: what install-test-deps.sh and
# install-bench-deps.sh do once they know what is missing.
set -euo pipefail

[ $# -gt 0 ] || exit 0
echo "installing Debian packages: $*"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
