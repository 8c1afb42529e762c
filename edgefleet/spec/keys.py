"""Which Compose keys edgefleet reads, which it refuses and which it ignores.

A key Compose knows but a fleet cannot honour is refused with the reason and
a way out; a key that only tunes something the agent does its own way is
accepted with a warning that it is ignored; a key Compose does not know is an
error with the closest known key suggested (see :mod:`edgefleet.spec.values`).
"""

from __future__ import annotations

_NOT_SUPPORTED = "is not supported by the agent's runtimes; remove it"
_TUNING = (
    "is ignored: devices apply only `cpus`, `mem_limit`, `pids_limit`, `shm_size` and `ulimits`; "
    "remove it, or use those keys"
)
_NO_TERMINAL = "is ignored: no terminal is attached to a workload on a device; remove it"

REFUSED_SERVICE_KEYS: dict[str, str] = {
    "build": (
        "devices do not build images: build the image and push it to a registry your devices "
        "can reach, then use `image:`"
    ),
    "env_file": (
        "env_file reads a file on the machine running Compose, which devices do not have: put "
        "the variables under `environment:` (values may use ${VAR} from the job's environment)"
    ),
    "external_links": (
        "links to containers outside the application, but a job's services see only each "
        "other: add the other container as a service of this application"
    ),
    "volumes_from": (
        "shares another container's volumes: declare a named volume under the top-level "
        "`volumes:` and mount it in both services"
    ),
    "ipc": "sharing IPC namespaces " + _NOT_SUPPORTED,
    "uts": "sharing the UTS namespace " + _NOT_SUPPORTED,
    "userns_mode": "choosing the user namespace " + _NOT_SUPPORTED,
    "cgroup": "choosing the cgroup namespace " + _NOT_SUPPORTED,
    "cgroup_parent": "choosing the parent cgroup " + _NOT_SUPPORTED,
    "isolation": "choosing the isolation technology " + _NOT_SUPPORTED,
    "storage_opt": "storage driver options " + _NOT_SUPPORTED,
    "credential_spec": "credential specs (Windows containers) " + _NOT_SUPPORTED,
    "device_cgroup_rules": (
        "device cgroup rules are not supported: list each device under `devices:`"
    ),
    "runtime": (
        "selects an engine runtime (such as nvidia) that devices may not have: remove it, pass "
        "the hardware under `devices:` and require it with x-edgefleet.requires.peripherals"
    ),
    "gpus": (
        "GPU reservations are not supported: pass the device under `devices:` and require it "
        "with x-edgefleet.requires.peripherals"
    ),
    "post_start": "lifecycle hooks are not run by the agent: do the step in the entrypoint",
    "pre_stop": "lifecycle hooks are not run by the agent: do the step in the entrypoint",
    "use_api_socket": (
        "would hand the container the engine's API socket, which controls the whole device; "
        "not allowed"
    ),
    "provider": "provider services run on the machine running Compose, not on devices",
    "models": "model services are not supported on devices; remove it",
    "label_file": "label_file reads a file devices do not have: write the labels under `labels:`",
}

IGNORED_SERVICE_KEYS: dict[str, str] = {
    "logging": "is ignored: the agent collects every service's output itself (`edgefleet logs`)",
    "tty": _NO_TERMINAL,
    "stdin_open": _NO_TERMINAL,
    "attach": _NO_TERMINAL,
    "annotations": "is ignored: annotations are not passed to the agent's runtimes",
    "domainname": "is ignored: the agent's runtimes do not set a domain name",
    "dns_search": "is ignored: DNS search domains are not set on devices; use full names",
    "dns_opt": "is ignored: resolver options are not set on devices",
    "mac_address": "is ignored: the job's private network assigns addresses",
    "develop": "is ignored: Compose Watch is for development machines, not devices",
    "memswap_limit": _TUNING,
    **{
        key: _TUNING
        for key in (
            "cpu_shares",
            "cpu_quota",
            "cpu_period",
            "cpu_rt_runtime",
            "cpu_rt_period",
            "cpu_count",
            "cpu_percent",
            "cpuset",
            "mem_reservation",
            "mem_swappiness",
            "oom_kill_disable",
            "oom_score_adj",
            "blkio_config",
        )
    },
}

REFUSED_TOP_KEYS: dict[str, str] = {
    "include": (
        "include pulls in other files, which devices and the server do not have: paste their "
        "services into this file"
    ),
    "models": REFUSED_SERVICE_KEYS["models"],
}
TOP_KEYS = frozenset(
    {"services", "name", "version", "volumes", "networks", "secrets", "configs", *REFUSED_TOP_KEYS}
)

HEALTHCHECK_KEYS = frozenset(
    {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
)
PORT_KEYS = frozenset(
    {"target", "published", "host_ip", "protocol", "name", "mode", "app_protocol"}
)
VOLUME_KEYS = frozenset(
    {"type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs", "image"}
)
VOLUME_BIND_KEYS = frozenset({"propagation", "create_host_path", "selinux", "recursive"})
VOLUME_VOLUME_KEYS = frozenset({"nocopy", "subpath"})
VOLUME_TMPFS_KEYS = frozenset({"size", "mode"})
DEPENDS_KEYS = frozenset({"condition", "required", "restart"})
ULIMIT_KEYS = frozenset({"soft", "hard"})
SERVICE_NETWORK_KEYS = frozenset(
    {
        "aliases",
        "ipv4_address",
        "ipv6_address",
        "link_local_ips",
        "priority",
        "gw_priority",
        "mac_address",
        "driver_opts",
        "interface_name",
    }
)
DEPLOY_KEYS = frozenset(
    {
        "mode",
        "replicas",
        "labels",
        "resources",
        "restart_policy",
        "placement",
        "update_config",
        "rollback_config",
        "endpoint_mode",
    }
)
RESOURCES_KEYS = frozenset({"limits", "reservations"})
LIMITS_KEYS = frozenset({"cpus", "memory", "pids"})
RESERVATIONS_KEYS = frozenset({"cpus", "memory", "devices", "generic_resources"})
RESTART_POLICY_KEYS = frozenset({"condition", "delay", "max_attempts", "window"})
TOP_VOLUME_KEYS = frozenset({"driver", "driver_opts", "external", "labels", "name"})
TOP_NETWORK_KEYS = frozenset(
    {
        "driver",
        "driver_opts",
        "attachable",
        "enable_ipv4",
        "enable_ipv6",
        "external",
        "internal",
        "ipam",
        "labels",
        "name",
    }
)
EXTENDS_KEYS = frozenset({"service", "file"})
X_EDGEFLEET_KEYS = frozenset({"requires"})
REQUIRES_KEYS = frozenset({"peripherals", "arch", "memory", "runtime"})

PROCESS_IGNORES = frozenset(
    {
        "image",
        "pull_policy",
        "platform",
        "volumes",
        "tmpfs",
        "devices",
        "cap_add",
        "cap_drop",
        "user",
        "hostname",
        "container_name",
        "networks",
        "network_mode",
        "privileged",
        "pid",
        "read_only",
        "init",
        "shm_size",
        "ulimits",
        "sysctls",
        "mem_limit",
        "cpus",
        "pids_limit",
        "extra_hosts",
        "dns",
        "security_opt",
        "group_add",
        "links",
    }
)
"""Keys that mean something only inside a container; a process service warns."""

NAMESPACED_SYSCTLS = ("net.", "kernel.msg", "kernel.shm", "fs.mqueue.")
NAMESPACED_SYSCTLS_EXACT = frozenset({"kernel.sem"})
