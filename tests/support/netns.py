"""Devices behind NAT, on one machine: network namespaces with a veth to the
host each, able to reach the server on the host but not each other (the host
drops forwarding between them). Everything is created by the test and removed
afterwards; traffic never leaves this machine."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


@dataclass
class Namespace:
    name: str
    host_if: str
    host_ip: str
    inner_ip: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.name, *args, check=check)

    def link(self, up: bool) -> None:
        """Cut or restore the device's network (its only link to the server)."""
        sh("ip", "link", "set", self.host_if, "up" if up else "down")


@contextlib.contextmanager
def isolated_namespaces(count: int) -> Iterator[list[Namespace]]:
    if os.geteuid() != 0:
        raise RuntimeError("network namespace tests need root (CI runs as root)")
    tag = uuid.uuid4().hex[:4]
    spaces: list[Namespace] = []
    rules: list[list[str]] = []
    try:
        for i in range(count):
            subnet = 200 + (int(tag, 16) + i * 7) % 50
            ns = Namespace(
                f"ef{tag}{i}", f"ef{tag}h{i}", f"10.{subnet}.{i + 1}.1", f"10.{subnet}.{i + 1}.2"
            )
            sh("ip", "netns", "add", ns.name)
            spaces.append(ns)
            peer = f"ef{tag}n{i}"
            sh("ip", "link", "add", ns.host_if, "type", "veth", "peer", "name", peer)
            sh("ip", "link", "set", peer, "netns", ns.name)
            sh("ip", "addr", "add", f"{ns.host_ip}/24", "dev", ns.host_if)
            sh("ip", "link", "set", ns.host_if, "up")
            ns.run("ip", "addr", "add", f"{ns.inner_ip}/24", "dev", peer)
            ns.run("ip", "link", "set", peer, "up")
            ns.run("ip", "link", "set", "lo", "up")
            ns.run("ip", "route", "add", "default", "via", ns.host_ip)
        for a in spaces:
            for b in spaces:
                if a is not b:
                    rule = ["FORWARD", "-i", a.host_if, "-o", b.host_if, "-j", "DROP"]
                    sh("iptables", "-I", *rule)
                    rules.append(rule)
        yield spaces
    finally:
        for rule in rules:
            sh("iptables", "-D", *rule, check=False)
        for ns in spaces:
            sh("ip", "link", "del", ns.host_if, check=False)
            sh("ip", "netns", "del", ns.name, check=False)
