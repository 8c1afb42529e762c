#!/usr/bin/env bash
# Install the Debian packages the test suite uses, only those missing:
# Podman (with runc, netavark, aardvark-dns and a static busybox for test images), PostgreSQL,
# nats-server, HAProxy, Chromium, iproute2, nftables, iptables, and a registry
# (docker-registry, htpasswd) for private-registry tests. Idempotent; quiet when all present.
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have podman         || need+=(podman)
have runc           || need+=(runc)
# Podman's own network stack and its DNS (service names resolve inside a
# job); without them Debian's Podman falls back to CNI, where they don't.
[ -x /usr/lib/podman/netavark ]     || need+=(netavark)
[ -x /usr/lib/podman/aardvark-dns ] || need+=(aardvark-dns)
[ -x /bin/busybox ] || need+=(busybox-static)
have pg_ctlcluster  || need+=(postgresql)
have nats-server    || need+=(nats-server)
have haproxy        || need+=(haproxy)
have chromium       || need+=(chromium)
have ip             || need+=(iproute2)
have nft            || need+=(nftables)         # the agent's job-isolation firewall
have iptables       || need+=(iptables)         # netavark 1.4 sets up container networks with it
have docker-registry || need+=(docker-registry)  # private-registry tests (Distribution)
have htpasswd       || need+=(apache2-utils)    # its bcrypt logins
have catatonit || [ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
have systemd-analyze || need+=(systemd)       # `edgefleet agent install` units are verified with it

"$(dirname "$0")/apt-install.sh" ${need[@]+"${need[@]}"}
