"""Files edgefleet refuses: every error names the key path and its line, and
says why and what to do instead."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edgefleet.spec.compose import Finding, SpecInvalid, parse, validate


def errors(text: str) -> list[tuple[str, int | None]]:
    return [(f.key, f.line) for f in validate(text) if f.level == "error"]


def only_error(text: str) -> Finding:
    found = [f for f in validate(text) if f.level == "error"]
    assert len(found) == 1, found
    return found[0]


def service(body: str, extra: str = "") -> str:
    """A one-service file; ``body`` is the service's settings (lines 3 on)."""
    lines = "".join(f"    {line}\n" for line in dedent(body).strip("\n").splitlines())
    return f"services:\n  app:\n{lines}{dedent(extra)}"


@pytest.mark.parametrize(
    ("body", "key", "line", "words"),
    [
        ("image: a\nbuild: .", "services.app.build", 4, "push it to a registry"),
        ("build: {context: .}", "services.app.build", 3, "then use `image:`"),
        ("image: a\nenv_file: .env", "services.app.env_file", 4, "under `environment:`"),
        # Used but not declared at the top level (project secrets and configs: issue 19).
        ("image: a\nsecrets: [token]", "services.app.secrets[0]", 4, "is not declared"),
        ("image: a\nconfigs: [cfg]", "services.app.configs[0]", 4, "is not declared"),
        ("image: a\nvolumes_from: [other]", "services.app.volumes_from", 4, "named volume"),
        ("image: a\nexternal_links: [x]", "services.app.external_links", 4, "add the other"),
        ("image: a\ngpus: all", "services.app.gpus", 4, "`devices:`"),
        ("image: a\nruntime: nvidia", "services.app.runtime", 4, "x-edgefleet.requires"),
        ("image: a\nipc: host", "services.app.ipc", 4, "remove it"),
        ("image: a\nuse_api_socket: true", "services.app.use_api_socket", 4, "whole device"),
        ("image: a\npull_policy: build", "services.app.pull_policy", 4, "push the image"),
        ("image: a\nnetwork_mode: service:db", "services.app.network_mode", 4, "by its name"),
        ("image: a\nnetwork_mode: container:x", "services.app.network_mode", 4, "not supported"),
        ("image: a\npid: service:x", "services.app.pid", 4, "only host"),
        ("image: a\ndeploy: {replicas: 3}", "services.app.deploy.replicas", 4, "more devices"),
        ("image: a\nscale: 2", "services.app.scale", 4, "once per device"),
        (
            "image: a\ndeploy:\n  resources:\n    reservations:\n      devices: [{capabilities: [gpu]}]",
            "services.app.deploy.resources.reservations.devices",
            7,
            "x-edgefleet.requires.peripherals",
        ),
        (
            "image: a\nextends: {file: base.yml, service: x}",
            "services.app.extends.file",
            4,
            "copy the base",
        ),
        ("image: a\ndevices: [nvidia.com/gpu=all]", "services.app.devices[0]", 4, "CDI"),
        ("image: a\nports: ['80/sctp']", "services.app.ports[0]", 4, "tcp or udp"),
    ],
)
def test_refused_service_keys(body: str, key: str, line: int, words: str) -> None:
    finding = only_error(service(body))
    assert (finding.key, finding.line) == (key, line)
    assert words in finding.message


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        (
            "services: {a: {image: x}}\nsecrets:\n  s: {file: ./s.txt}\n",
            "secrets.s.file",
            3,
            "project secret",
        ),
        (
            "services: {a: {image: x}}\nconfigs:\n  c: {file: ./c}\n",
            "configs.c.file",
            3,
            "project variable",
        ),
        ("include: [other.yml]\nservices: {a: {image: x}}\n", "include", 1, "paste"),
        (
            "services: {a: {image: x}}\nnetworks:\n  n: {external: true}\n",
            "networks.n.external",
            3,
            "never see",
        ),
        (
            "services: {a: {image: x}}\nvolumes:\n  v: {driver_opts: {type: nfs}}\n",
            "volumes.v.driver_opts",
            3,
            "NFS",
        ),
        (
            "services: {a: {image: x}}\nvolumes:\n  v: {driver: rexray}\n",
            "volumes.v.driver",
            3,
            "local",
        ),
        (
            "services: {a: {image: x}}\nnetworks:\n  n: {driver: overlay}\n",
            "networks.n.driver",
            3,
            "bridge",
        ),
    ],
)
def test_refused_top_level_keys(text: str, key: str, line: int, words: str) -> None:
    finding = only_error(text)
    assert (finding.key, finding.line) == (key, line)
    assert words in finding.message


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (
            "imagee: nginx\nimage: nginx",
            "services.app.imagee",
            "unknown key; did you mean 'image'?",
        ),
        ("image: a\nportss: [80]", "services.app.portss", "unknown key; did you mean 'ports'?"),
        (
            "image: a\nhealthcheck: {test: true, intervl: 5s}",
            "services.app.healthcheck.intervl",
            "did you mean 'interval'?",
        ),
        (
            "image: a\nports: [{target: 80, publishd: 8080}]",
            "services.app.ports[0].publishd",
            "did you mean 'published'?",
        ),
        (
            "image: a\nvolumes: [{type: volume, target: /d, readonly: true}]",
            "services.app.volumes[0].readonly",
            "did you mean 'read_only'?",
        ),
        (
            "image: a\ndepends_on: {b: {condtion: service_started}}",
            "services.app.depends_on.b.condtion",
            "did you mean 'condition'?",
        ),
        (
            "image: a\nulimits: {nofile: {soft: 1, hrd: 2}}",
            "services.app.ulimits.nofile.hrd",
            "did you mean 'hard'?",
        ),
        (
            "image: a\ndeploy: {resources: {limits: {memroy: 1G}}}",
            "services.app.deploy.resources.limits.memroy",
            "did you mean 'memory'?",
        ),
        (
            "image: a\nnetworks: {default: {alias: [x]}}",
            "services.app.networks.default.alias",
            "did you mean 'aliases'?",
        ),
        ("image: a\nwibble: 1", "services.app.wibble", "x-..."),
    ],
)
def test_unknown_keys_name_the_exact_path(body: str, key: str, message: str) -> None:
    text = service(body, "\n  b: {image: b}\n")
    found = [f for f in validate(text) if f.level == "error" and f.key == key]
    assert found, validate(text)
    assert message in found[0].message


def test_unknown_top_level_and_x_edgefleet_keys() -> None:
    text = (
        "servics: {}\nservices: {a: {image: x}}\nx-edgefleet: {require: {}}\nx-anything: {a: 1}\n"
    )
    assert errors(text) == [("servics", 1), ("x-edgefleet.require", 3)]
    assert "did you mean 'services'?" in validate(text)[0].message


@pytest.mark.parametrize(
    ("body", "key", "line", "words"),
    [
        ("image: a\nports: [abc]", "services.app.ports[0]", 4, "whole number"),
        ("image: a\nports: ['70000']", "services.app.ports[0]", 4, "1 to 65535"),
        ("image: a\nports: [{target: 0}]", "services.app.ports[0].target", 4, "out of range"),
        ("image: a\nports: ['8080-8081:80-82']", "services.app.ports[0]", 4, "differ in length"),
        ("image: a\nports: ['300.1.1.1:80:80']", "services.app.ports[0]", 4, "IP address"),
        ("image: a\nports: [{published: 80}]", "services.app.ports[0]", 4, "target is required"),
        ('image: a\nports: "80"', "services.app.ports", 4, "list of ports"),
        ("image: a\nrestart: sometimes", "services.app.restart", 4, "unless-stopped"),
        ("image: a\nrestart: alway", "services.app.restart", 4, "did you mean 'always'?"),
        ("image: a\nrestart: always:3", "services.app.restart", 4, "on-failure[:N]"),
        (
            "image: a\nhealthcheck: {test: [CMD], interval: 5s}",
            "services.app.healthcheck.test",
            4,
            "needs a command",
        ),
        (
            "image: a\nhealthcheck: {test: [curl, x]}",
            "services.app.healthcheck.test",
            4,
            "CMD-SHELL",
        ),
        ("image: a\nhealthcheck: {test: x, interval: 10}", None, None, None),
        (
            "image: a\nhealthcheck:\n  test: x\n  interval: 10x",
            "services.app.healthcheck.interval",
            6,
            "not a duration",
        ),
        (
            "image: a\nhealthcheck:\n  test: x\n  timeout: '30'",
            "services.app.healthcheck.timeout",
            6,
            "write 30s",
        ),
        ("image: a\nhealthcheck: {interval: 5s}", "services.app.healthcheck", 4, "needs a test"),
        (
            "image: a\nstop_grace_period: soon",
            "services.app.stop_grace_period",
            4,
            "not a duration",
        ),
        ("image: a\nmem_limit: lots", "services.app.mem_limit", 4, "not a size"),
        ("image: a\ncpus: 0", "services.app.cpus", 4, "more than 0"),
        ("image: a\nread_only: maybe", "services.app.read_only", 4, "true or false"),
        (
            "image: a\nsysctls: {vm.swappiness: 10}",
            "services.app.sysctls.vm.swappiness",
            4,
            "sysctl vm.swappiness is not namespaced",
        ),
        ("image: a\nsysctls: [kernel.pid_max=10]", "services.app.sysctls[0]", 4, "kernel.pid_max"),
        (
            "image: a\nulimits: {nofile: {soft: 9, hard: 1}}",
            "services.app.ulimits.nofile",
            4,
            "above the hard",
        ),
        (
            "image: a\nulimits: {nofile: {soft: 9}}",
            "services.app.ulimits.nofile",
            4,
            "hard is required",
        ),
        ("image: a\nvolumes: ['data']", "services.app.volumes[0]", 4, "absolute"),
        ("image: a\nvolumes: ['/a:/b:rx']", "services.app.volumes[0]", 4, "mount option 'rx'"),
        (
            "image: a\nvolumes: [{type: bind, target: /x}]",
            "services.app.volumes[0].source",
            4,
            "needs a source",
        ),
        (
            "image: a\nvolumes: [{source: v, target: /x}]",
            "services.app.volumes[0].type",
            4,
            "type is required",
        ),
        (
            "image: a\nvolumes: [{type: npipe, target: /x}]",
            "services.app.volumes[0].type",
            4,
            "not supported",
        ),
        ("image: a\ndevices: [ttyUSB0]", "services.app.devices[0]", 4, "/dev/HOST"),
        ("image: a\ndevices: ['/dev/a:/dev/b:rwx']", "services.app.devices[0]", 4, "rwm"),
        ("image: a\nenvironment: [=x]", "services.app.environment[0]", 4, "no name"),
        ("image: a\nenvironment: {A: [1]}", "services.app.environment.A", 4, "not a list"),
        ('image: a\ncommand: "echo \'unclosed"', "services.app.command", 4, "quotes"),
        ("image: 'has space'", "services.app.image", 3, "image reference"),
        ("image: a\npull_policy: sometimes", "services.app.pull_policy", 4, "always"),
        ("image: a\nplatform: arm64", "services.app.platform", 4, "linux/arm64"),
        ("image: a\nhostname: bad_host!", "services.app.hostname", 4, "host name"),
        ("image: a\nextra_hosts: ['db:not-an-ip']", "services.app.extra_hosts[0]", 4, "IP address"),
        ("image: a\ndns: [resolver]", "services.app.dns[0]", 4, "IP address"),
        (
            "image: a\nnetwork_mode: bridge\nnetworks: [default]",
            "services.app.networks",
            5,
            "cannot be combined",
        ),
        (
            "image: a\nmem_limit: 1G\ndeploy: {resources: {limits: {memory: 2G}}}",
            "services.app.deploy.resources.limits.memory",
            5,
            "conflicts",
        ),
        (
            "image: a\nx-edgefleet-runtime: vm",
            "services.app.x-edgefleet-runtime",
            4,
            "process or container",
        ),
        ("x-edgefleet-runtime: process\nenvironment: {A: b}", "services.app", 2, "needs a command"),
        ("restart: always", "services.app", 2, "has no image"),
        ("image: a\ntmpfs: ['/run:size=big']", "services.app.tmpfs[0]", 4, "not a size"),
        ("image: a\nexpose: ['80/sctp']", "services.app.expose[0]", 4, "tcp or udp"),
    ],
)
def test_invalid_values(body: str, key: str | None, line: int | None, words: str | None) -> None:
    found = errors(service(body))
    if key is None:
        assert found == []
        return
    assert found == [(key, line)]
    message = next(f.message for f in validate(service(body)) if f.level == "error")
    assert words is not None
    assert words in message


def test_missing_or_empty_services() -> None:
    assert errors("version: '3'\n") == [("", 1)]
    assert errors("services: {}\n") == [("services", 1)]
    assert errors("name: x\nservices: []\n") == [("services", 2)]
    with pytest.raises(SpecInvalid, match="services is required"):
        parse({"volumes": {}})


def test_service_names_and_project_name() -> None:
    assert errors("name: My App\nservices:\n  'web app': {image: a}\n") == [
        ("name", 1),
        ("services.web app", 3),
    ]


DEPENDENCIES = dedent("""\
    services:
      web:
        image: web
        depends_on:
          api: {condition: service_healthy}
          ghost: {condition: service_started}
      api:
        image: api
        depends_on: [worker]
      worker:
        image: worker
        depends_on:
          - web
          - worker
      lonely:
        image: lonely
        links: [nobody]
    """)


def test_dependency_errors() -> None:
    found = [f for f in validate(DEPENDENCIES) if f.level == "error"]
    assert [(f.key, f.line) for f in found] == [
        ("services.web.depends_on.api", 5),
        ("services.web.depends_on.api", 5),
        ("services.web.depends_on.ghost", 6),
        ("services.worker.depends_on[1]", 14),
        ("services.lonely.links[0]", 17),
    ]
    messages = [f.message for f in found]
    assert "api has no healthcheck" in messages[0]
    assert "cycle api -> worker -> web -> api" in messages[1]
    assert "'ghost', which is not in this file" in messages[2]
    assert "depends on itself" in messages[3]
    assert "links to service 'nobody'" in messages[4]


def test_undeclared_volumes_and_networks() -> None:
    text = dedent("""\
        services:
          app:
            image: a
            volumes:
              - data:/data
              - type: volume
                source: cache
                target: /cache
              - ./local:/local
            networks: [default, backend]
        volumes:
          cache:
        """)
    found = [f for f in validate(text) if f.level == "error"]
    assert [(f.key, f.line) for f in found] == [
        ("services.app.volumes[0]", 5),
        ("services.app.networks[1]", 10),
    ]
    assert "volumes: {data: {}}" in found[0].message
    assert "networks: {backend: {}}" in found[1].message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("services:\n  a:\n    image: x\n   ports: [80]\n", 4, "YAML syntax error"),
        ("services:\n  a: {image: x\n", 3, "YAML syntax error"),
        ("services:\n\timage: x\n", 2, "YAML syntax error"),
        ("- a\n- b\n", 1, "not a list"),
        ("just text\n", 1, "single value"),
        ("", 1, "empty"),
        ("services:\n  a: {image: x}\n  a: {image: y}\n", 3, "appears twice"),
        ("services:\n  a: *nothing\n", 2, "YAML syntax error"),
        ("a: &x\n  b: *x\nservices: {}\n", 1, "refers to its own anchor"),
    ],
)
def test_yaml_errors(text: str, line: int, words: str) -> None:
    finding = only_error(text)
    assert (finding.key, finding.line) == ("", line)
    assert words in finding.message
    with pytest.raises(SpecInvalid) as caught:
        parse(text)
    assert str(caught.value) == finding.message


def test_every_error_at_once_in_file_order() -> None:
    text = dedent("""\
        services:
          web:
            image: nginx
            build: .
            ports: [abc]
            restart: sometimes
          db:
            env_file: .env
            imag: postgres
        """)
    assert [(f.level, f.key, f.line) for f in validate(text)] == [
        ("error", "services.web.build", 4),
        ("error", "services.web.ports[0]", 5),
        ("error", "services.web.restart", 6),
        ("error", "services.db", 7),
        ("error", "services.db.env_file", 8),
        ("error", "services.db.imag", 9),
    ]


def test_validate_never_raises_on_odd_input() -> None:
    odd: list[object] = [
        {"services": {"a": None}},
        {"services": {"a": []}},
        {"services": {"a": {"image": ["x"]}}},
        {"services": {"a": {"image": "x", "ports": [None, True, [1]]}}},
        {"services": {"a": {"image": "x", "volumes": [1, None, {}]}}},
        {"services": {"a": {"image": "x", "healthcheck": "yes"}}},
        {"services": {"a": {"image": "x", "depends_on": "b"}}},
        {"services": {"a": {"image": "x", "deploy": [1]}}},
        {"services": {"a": {"image": "x", "networks": 3}}},
        {"services": {"a": {"image": "x"}}, "volumes": [1], "networks": "n"},
        {"services": {"a": {"image": "x", "extends": 5}}},
        {"services": {"a": {"image": "x"}}, "x-edgefleet": {"requires": {"memory": []}}},
        {1: 2},
        ["services"],
        42,
    ]
    for source in odd:
        findings = validate(source)  # type: ignore[arg-type]
        assert any(f.level == "error" for f in findings), source
