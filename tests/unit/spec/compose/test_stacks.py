"""Realistic Compose files, in the style of popular stacks, read end to end:
the normalized values and every finding (key and line)."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edgefleet.spec.compose import Finding, SpecInvalid, parse
from edgefleet.spec.model import Dependency, HealthCheck, Mount, Port, Ulimit


def where(findings: list[Finding], level: str = "warning") -> list[tuple[str, int | None]]:
    return [(f.key, f.line) for f in findings if f.level == level]


WEB_DB_REDIS = dedent("""\
    name: shop
    services:
      web:
        image: ghcr.io/example/shop:2.4
        command: gunicorn shop.wsgi --bind 0.0.0.0:8000 --workers "2"
        environment:
          DATABASE_URL: postgres://shop:shop@db:5432/shop
          REDIS_URL: redis://cache:6379/0
          DEBUG: false
          WORKERS: 2
          EMPTY:
        ports:
          - "8000"
        depends_on:
          db:
            condition: service_healthy
            restart: true
          cache:
            condition: service_started
          migrate:
            condition: service_completed_successfully
            required: false
        restart: unless-stopped
        healthcheck:
          test: ["CMD", "curl", "-f", "http://localhost:8000/health"]
          interval: 30s
          timeout: 5s
          retries: 5
          start_period: 1m
      migrate:
        image: ghcr.io/example/shop:2.4
        entrypoint: ["python", "manage.py"]
        command: migrate --noinput
        depends_on: [db]
      db:
        image: postgres:16-alpine
        environment:
          - POSTGRES_USER=shop
          - POSTGRES_PASSWORD=shop
          - POSTGRES_DB=shop
        volumes:
          - pgdata:/var/lib/postgresql/data
        healthcheck:
          test: pg_isready -U shop
          interval: 10s
          timeout: 5s
          retries: 5
          start_interval: 500ms
        restart: always
      cache:
        image: redis:7
        command: ["redis-server", "--appendonly", "yes"]
        healthcheck:
          test: ["CMD-SHELL", "redis-cli ping | grep PONG"]
        volumes: [redis:/data]
    volumes:
      pgdata:
      redis: {}
    """)


def test_web_postgres_redis() -> None:
    spec, warnings = parse(WEB_DB_REDIS)
    assert warnings == []
    web = spec.services["web"]
    assert web.image == "ghcr.io/example/shop:2.4"
    assert web.command == ["gunicorn", "shop.wsgi", "--bind", "0.0.0.0:8000", "--workers", "2"]
    assert web.environment == {
        "DATABASE_URL": "postgres://shop:shop@db:5432/shop",
        "REDIS_URL": "redis://cache:6379/0",
        "DEBUG": "false",
        "WORKERS": "2",
    }
    assert web.ports == [Port(target=8000)]
    assert web.depends_on == {
        "db": Dependency(condition="service_healthy", restart=True),
        "cache": Dependency(),
        "migrate": Dependency(condition="service_completed_successfully", required=False),
    }
    assert web.restart == "unless-stopped"
    assert web.healthcheck == HealthCheck(
        test=["CMD", "curl", "-f", "http://localhost:8000/health"],
        interval=30,
        timeout=5,
        retries=5,
        start_period=60,
    )
    migrate = spec.services["migrate"]
    assert migrate.entrypoint == ["python", "manage.py"]
    assert migrate.command == ["migrate", "--noinput"]
    assert migrate.depends_on == {"db": Dependency()}
    db = spec.services["db"]
    assert db.environment["POSTGRES_DB"] == "shop"
    assert db.volumes == [Mount(type="volume", source="pgdata", target="/var/lib/postgresql/data")]
    assert db.healthcheck == HealthCheck(
        test=["CMD-SHELL", "pg_isready -U shop"],
        interval=10,
        timeout=5,
        retries=5,
        start_interval=0.5,
    )
    assert spec.services["cache"].healthcheck is not None
    assert spec.services["cache"].healthcheck.test == ["CMD-SHELL", "redis-cli ping | grep PONG"]
    assert set(spec.volumes) == {"pgdata", "redis"}
    assert spec.start_order().index("db") < spec.start_order().index("web")


def test_empty_environment_value_comes_from_the_job_at_deploy_time() -> None:
    spec, _ = parse(WEB_DB_REDIS, environment={"EMPTY": "filled"})
    assert spec.services["web"].environment["EMPTY"] == "filled"


MONITORING = dedent("""\
    services:
      prometheus:
        image: prom/prometheus:v2.53.0
        command:
          - --config.file=/etc/prometheus/prometheus.yml
          - --storage.tsdb.retention.time=15d
        volumes:
          - type: bind
            source: /etc/edge/prometheus.yml
            target: /etc/prometheus/prometheus.yml
            read_only: true
          - prometheus-data:/prometheus
        ports:
          - target: 9090
            name: web
            app_protocol: http
        networks: [monitoring]
        user: 65534
      grafana:
        image: grafana/grafana:11.1.0
        environment:
          GF_SECURITY_ADMIN_PASSWORD: admin
        volumes:
          - type: volume
            source: grafana-data
            target: /var/lib/grafana
            volume: {nocopy: true}
        ports: ["3000"]
        networks:
          monitoring:
            aliases: [dashboards, grafana.local]
          default:
        depends_on: [prometheus]
      node-exporter:
        image: prom/node-exporter:v1.8.1
        pid: host
        network_mode: host
        volumes:
          - /proc:/host/proc:ro
        command: --path.procfs=/host/proc
        labels:
          - org.example.role=exporter
          - org.example.empty
    volumes:
      prometheus-data:
      grafana-data:
        labels: {backup: daily}
    networks:
      monitoring:
        internal: true
        labels:
          team: ops
    """)


def test_monitoring_stack() -> None:
    spec, warnings = parse(MONITORING)
    prometheus = spec.services["prometheus"]
    assert prometheus.command == [
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.retention.time=15d",
    ]
    assert prometheus.volumes == [
        Mount(
            type="bind",
            source="/etc/edge/prometheus.yml",
            target="/etc/prometheus/prometheus.yml",
            read_only=True,
        ),
        Mount(type="volume", source="prometheus-data", target="/prometheus"),
    ]
    assert prometheus.ports == [Port(target=9090, name="web")]
    assert prometheus.networks == {"monitoring": []}
    assert prometheus.user == "65534"
    grafana = spec.services["grafana"]
    assert grafana.networks == {"monitoring": ["dashboards", "grafana.local"], "default": []}
    assert grafana.volumes == [
        Mount(type="volume", source="grafana-data", target="/var/lib/grafana")
    ]
    exporter = spec.services["node-exporter"]
    assert (exporter.pid, exporter.network_mode) == ("host", "host")
    assert exporter.volumes[0].type == "bind"
    assert exporter.volumes[0].read_only
    assert exporter.labels == {"org.example.role": "exporter", "org.example.empty": ""}
    assert spec.networks["monitoring"].internal
    assert spec.networks["monitoring"].labels == {"team": "ops"}
    assert spec.volumes["grafana-data"].labels == {"backup": "daily"}
    assert where(warnings) == [
        ("services.prometheus.volumes[0]", 8),
        ("services.node-exporter.pid", 36),
        ("services.node-exporter.network_mode", 37),
        ("services.node-exporter.volumes[0]", 39),
    ]
    assert "--allow-host-path" in warnings[0].message
    assert "--allow-privileged" in warnings[1].message


HARDENED = dedent("""\
    services:
      api:
        image: registry.example.com/api@sha256:0123456789abcdef
        user: "1000:1000"
        read_only: true
        init: true
        working_dir: /app
        hostname: api-1
        tmpfs:
          - /tmp
          - /run:size=64m,mode=1777
        cap_drop: [ALL]
        cap_add: [NET_BIND_SERVICE]
        security_opt: ["no-new-privileges:true"]
        mem_limit: 256m
        cpus: 0.5
        shm_size: 64M
        ulimits:
          nofile: {soft: 1024, hard: 4096}
          nproc: 512
        sysctls:
          net.core.somaxconn: 1024
          net.ipv4.tcp_syncookies: 0
        stop_signal: SIGINT
        stop_grace_period: 1m30s
        pull_policy: always
        platform: linux/arm64
        restart: on-failure:5
        devices:
          - /dev/ttyUSB0
          - /dev/video0:/dev/video1:r
        extra_hosts:
          - "gateway:host-gateway"
          - metrics=10.0.0.5
        dns: 1.1.1.1
        group_add: [dialout, 44]
        expose: ["9100-9101", 9200]
        deploy:
          resources:
            limits: {cpus: "0.5", memory: 256M}
    """)


def test_hardened_app_with_limits() -> None:
    spec, warnings = parse(HARDENED)
    assert warnings == []
    api = spec.services["api"]
    assert api.user == "1000:1000"
    assert (api.read_only, api.init, api.working_dir, api.hostname) == (True, True, "/app", "api-1")
    assert api.volumes == [
        Mount(type="tmpfs", target="/tmp"),
        Mount(type="tmpfs", target="/run", tmpfs_size=64 << 20, tmpfs_mode=0o1777),
    ]
    assert (api.cap_drop, api.cap_add) == (["ALL"], ["NET_BIND_SERVICE"])
    assert api.security_opt == ["no-new-privileges:true"]
    assert (api.mem_limit, api.cpus, api.shm_size) == (256 << 20, 0.5, 64 << 20)
    assert api.ulimits == {
        "nofile": Ulimit(soft=1024, hard=4096),
        "nproc": Ulimit(soft=512, hard=512),
    }
    assert api.sysctls == {"net.core.somaxconn": "1024", "net.ipv4.tcp_syncookies": "0"}
    assert (api.stop_signal, api.stop_grace_period) == ("SIGINT", 90.0)
    assert (api.pull_policy, api.platform) == ("always", "linux/arm64")
    assert (api.restart, api.restart_max_attempts) == ("on-failure", 5)
    assert api.devices == ["/dev/ttyUSB0:/dev/ttyUSB0", "/dev/video0:/dev/video1:r"]
    assert api.extra_hosts == ["gateway:host-gateway", "metrics:10.0.0.5"]
    assert api.dns == ["1.1.1.1"]
    assert api.group_add == ["dialout", "44"]
    assert api.expose == [9100, 9101, 9200]


ANCHORS = dedent("""\
    x-defaults: &defaults
      restart: unless-stopped
      logging:
        driver: json-file
        options: {max-size: 10m}
      environment: &env
        TZ: Europe/Berlin
        LOG_LEVEL: info
    x-probe: &probe
      image: ghcr.io/example/probe:1.0
      volumes: [results:/data]
    services:
      ping:
        <<: [*defaults, *probe]
        command: ["probe", "ping", "8.8.8.8"]
      dns:
        <<: [*probe, *defaults]
        environment:
          <<: *env
          LOG_LEVEL: debug
        command: probe dns example.org
    volumes:
      results:
    x-edgefleet:
      requires:
        peripherals: [wifi]
        arch: [arm64, x86_64, linux/arm/v7]
        memory: 512Mi
        runtime: docker
    """)


def test_anchors_and_merge_keys() -> None:
    spec, warnings = parse(ANCHORS)
    ping, dns = spec.services["ping"], spec.services["dns"]
    assert ping.image == dns.image == "ghcr.io/example/probe:1.0"
    assert ping.restart == dns.restart == "unless-stopped"
    assert ping.environment == {"TZ": "Europe/Berlin", "LOG_LEVEL": "info"}
    assert dns.environment == {"TZ": "Europe/Berlin", "LOG_LEVEL": "debug"}
    assert dns.command == ["probe", "dns", "example.org"]
    assert spec.requires.peripherals == ["wifi"]
    assert spec.requires.arch == ["arm64", "amd64", "arm"]
    assert spec.requires.memory == 512 << 20
    assert spec.requires.runtime == ["docker"]
    # logging comes from the anchor: the warning points at the anchor's line, once per service
    assert where(warnings) == [("services.ping.logging", 3), ("services.dns.logging", 3)]


LONG_SYNTAX = dedent("""\
    services:
      gateway:
        image: traefik:v3.0
        ports:
          - target: 80
            published: 8080
            protocol: tcp
            mode: host
          - target: 53
            published: "5353"
            host_ip: 127.0.0.1
            protocol: udp
          - "127.0.0.1:9090-9091:8080-8081"
          - "[::1]:4443:443/tcp"
          - 7000
          - "6000-6001"
        volumes:
          - type: tmpfs
            target: /cache
            tmpfs: {size: 10485760, mode: 0755}
          - type: volume
            target: /anonymous
          - type: bind
            source: ./traefik.yml
            target: /etc/traefik/traefik.yml
            bind: {create_host_path: false}
          - certs:/certs:ro,z
    volumes:
      certs:
    """)


def test_long_syntax_ports_and_volumes() -> None:
    spec, warnings = parse(LONG_SYNTAX)
    gateway = spec.services["gateway"]
    assert gateway.ports == [
        Port(target=80, published=8080),
        Port(target=53, published=5353, host_ip="127.0.0.1", protocol="udp"),
        Port(target=8080, published=9090, host_ip="127.0.0.1"),
        Port(target=8081, published=9091, host_ip="127.0.0.1"),
        Port(target=443, published=4443, host_ip="::1"),
        Port(target=7000),
        Port(target=6000),
        Port(target=6001),
    ]
    assert gateway.volumes == [
        Mount(type="tmpfs", target="/cache", tmpfs_size=10485760, tmpfs_mode=0o755),
        Mount(type="volume", target="/anonymous"),
        Mount(type="bind", source="./traefik.yml", target="/etc/traefik/traefik.yml"),
        Mount(type="volume", source="certs", target="/certs", read_only=True),
    ]
    assert where(warnings) == [
        ("services.gateway.ports[0]", 5),
        ("services.gateway.ports[1]", 9),
        ("services.gateway.ports[2]", 13),
        ("services.gateway.ports[3]", 14),
        ("services.gateway.volumes[2]", 23),
    ]
    assert "9090-9091" in warnings[2].message
    assert "relative" in warnings[4].message


PROCESS = dedent("""\
    services:
      collector:
        x-edgefleet-runtime: process
        command: ["/usr/bin/python3", "-m", "collector", "--every", "60"]
        environment: {TARGETS: "8.8.8.8"}
        working_dir: /var/lib/collector
        restart: on-failure
        stop_signal: SIGINT
        ports: ["18080"]
        volumes: [data:/data]
      shell:
        x-edgefleet-runtime: process
        command: sh -c 'echo "$$HOME" && sleep 5'
        x-notes: anything at all
    volumes:
      data:
    """)


def test_process_runtime_services() -> None:
    spec, warnings = parse(PROCESS)
    collector = spec.services["collector"]
    assert collector.runtime == "process"
    assert collector.image is None
    assert collector.command == ["/usr/bin/python3", "-m", "collector", "--every", "60"]
    assert collector.ports == [Port(target=18080)]
    assert collector.volumes == []
    assert spec.services["shell"].command == ["sh", "-c", 'echo "$HOME" && sleep 5']
    assert spec.runtimes_needed() == {"process"}
    assert where(warnings) == [("services.collector.volumes", 10)]
    assert "process" in warnings[0].message


def test_embedded_demo_spec_parses() -> None:
    import json

    from edgefleet.embedded import DEMO_COMPOSE, DEMO_PAGE  # the spec `edgefleet up` deploys

    text = DEMO_COMPOSE.replace("{python}", "/usr/bin/python3").replace(
        "{page}", json.dumps(DEMO_PAGE)
    )
    spec, warnings = parse(text)
    assert warnings == []
    assert spec.services["web"].runtime == "process"
    assert spec.services["web"].command == ["/usr/bin/python3", "-c", DEMO_PAGE]
    assert spec.services["web"].environment == {"GREETING": "Hello from edgefleet"}


FLEET_PROBE = dedent("""\
    version: "3.9"
    services:
      measure:
        image: localhost/netrics:1.0
        command: ["netrics", "--every", "60"]
        environment: {TARGETS: "8.8.8.8"}
        volumes: ["results:/data"]
        restart: unless-stopped
        container_name: netrics
        profiles: [measure]
        logging:
          driver: journald
      web:
        image: localhost/dashboard:1.0
        ports: ["8080"]
        privileged: true
        deploy:
          replicas: 1
          placement:
            constraints: [node.role == manager]
          restart_policy:
            condition: on-failure
            max_attempts: 3
    volumes:
      results:
    x-edgefleet:
      requires: {peripherals: ["camera"], arch: ["arm64", "amd64"], memory: 256M}
    """)


def test_fleet_probe_with_accepted_but_warned_keys() -> None:
    spec, warnings = parse(FLEET_PROBE)
    measure = spec.services["measure"]
    assert measure.aliases == ["netrics"]
    web = spec.services["web"]
    assert web.privileged
    assert (web.restart, web.restart_max_attempts) == ("on-failure", 3)
    assert spec.requires.memory == 256 << 20
    assert where(warnings) == [
        ("version", 1),
        ("services.measure.container_name", 9),
        ("services.measure.profiles", 10),
        ("services.measure.logging", 11),
        ("services.web.privileged", 16),
        ("services.web.deploy.placement", 19),
    ]
    assert "fixed container names" in warnings[1].message


def test_json_spec_has_no_lines() -> None:
    spec, warnings = parse(
        {
            "services": {
                "web": {"image": "nginx", "ports": [80], "container_name": "web-1"},
            }
        }
    )
    assert spec.services["web"].ports == [Port(target=80)]
    assert [(f.key, f.line) for f in warnings] == [("services.web.container_name", None)]


def test_spec_invalid_carries_every_finding() -> None:
    with pytest.raises(SpecInvalid) as caught:
        parse(FLEET_PROBE.replace("image: localhost/dashboard:1.0", "build: ."))
    exc = caught.value
    assert str(exc).startswith("services.web.build: devices do not build images")
    assert [f.level for f in exc.findings].count("error") == 1
    assert [f.level for f in exc.findings].count("warning") == 6
    assert exc.findings[0].to_dict() == {
        "level": "warning",
        "key": "version",
        "line": 1,
        "message": exc.findings[0].message,
    }
