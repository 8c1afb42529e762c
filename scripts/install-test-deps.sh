#!/usr/bin/env bash
# Install the Debian packages the test suite uses, only those missing:
# Podman (with runc and a static busybox for test images), PostgreSQL,
# nats-server, HAProxy, Chromium, iproute2, and a registry
# (docker-registry, htpasswd) for private-registry tests. Idempotent; quiet when all present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman         || need+=(podman)
have runc           || need+=(runc)
[ -x /bin/busybox ] || need+=(busybox-static)
have pg_ctlcluster  || need+=(postgresql)
have nats-server    || need+=(nats-server)
have haproxy        || need+=(haproxy)
have chromium       || need+=(chromium)
have ip             || need+=(iproute2)
have docker-registry || need+=(docker-registry)  # private-registry tests (Distribution)
have htpasswd       || need+=(apache2-utils)    # its bcrypt logins
have catatonit || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)

if [ ${#need[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
