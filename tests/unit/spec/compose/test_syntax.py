"""The building blocks: YAML as Compose reads it, value syntaxes, and
same-file ``extends``."""

from __future__ import annotations

from textwrap import dedent

import pytest

from edgefleet.spec import units
from edgefleet.spec.compose import SpecInvalid, load_yaml, parse, validate
from edgefleet.spec.loader import load_with_lines
from edgefleet.spec.model import HealthCheck, Mount, Port


def test_yaml_reads_scalars_like_compose() -> None:
    data = load_yaml(
        dedent("""\
            services:
              a:
                restart: no
                ports: [22:22, 8080:80]
                environment: {ON: on, YES: yes, T: true, OCT: 0755, F: 1.5, DATE: 2024-01-01}
            """)
    )
    service = data["services"]["a"]
    assert service["restart"] == "no"
    assert service["ports"] == ["22:22", "8080:80"]
    assert service["environment"] == {
        "ON": "on",
        "YES": "yes",
        "T": True,
        "OCT": 0o755,
        "F": 1.5,
        "DATE": "2024-01-01",
    }


def test_lines_follow_anchors_and_merge_keys() -> None:
    data, lines = load_with_lines(
        dedent("""\
            x-base: &base
              image: base:1
              restart: always
            services:
              a:
                <<: *base
                restart: "no"
            """)
    )
    assert data["services"]["a"] == {"image": "base:1", "restart": "no"}
    assert lines[("services", "a", "image")] == 2
    assert lines[("services", "a", "restart")] == 7


def test_alias_bombs_are_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdefg":
        previous = chr(ord(level) - 1)
        text += f"{level}: &{level} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
    with pytest.raises(SpecInvalid, match="more than"):
        load_yaml(text + "services: {}\n")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1h", 3600.0),
        ("2h45m", 9900.0),
        ("1.5s", 1.5),
        ("250us", 0.00025),
        ("0", 0.0),
        (15, 15.0),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert units.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["10", "1 m", "1d", "s", "", "-5s", True, [1]])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        units.parse_duration(bad)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("256M", 256 << 20),
        ("256m", 256 << 20),
        ("1G", 1 << 30),
        ("1gb", 1 << 30),
        ("512Mi", 512 << 20),
        ("512MiB", 512 << 20),
        ("1.5g", int(1.5 * (1 << 30))),
        ("64k", 64 << 10),
        ("100", 100),
        ("100b", 100),
        (4096, 4096),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert units.parse_size(text) == size


@pytest.mark.parametrize("bad", ["lots", "1X", "-1", "M", True, -5])
def test_bad_sizes(bad: object) -> None:
    with pytest.raises(ValueError):
        units.parse_size(bad)


@pytest.mark.parametrize(
    ("short", "ports"),
    [
        ("80", [Port(target=80)]),
        ("8080:80", [Port(target=80, published=8080)]),
        ("127.0.0.1:8080:80", [Port(target=80, published=8080, host_ip="127.0.0.1")]),
        ("127.0.0.1::80", [Port(target=80, host_ip="127.0.0.1")]),
        ("8080:80/udp", [Port(target=80, published=8080, protocol="udp")]),
        ("53/UDP", [Port(target=53, protocol="udp")]),
        (
            "9090-9091:8080-8081",
            [Port(target=8080, published=9090), Port(target=8081, published=9091)],
        ),
        ("3000-3001", [Port(target=3000), Port(target=3001)]),
        ("::1:8080:80", [Port(target=80, published=8080, host_ip="::1")]),
        ("[::1]:8080:80", [Port(target=80, published=8080, host_ip="::1")]),
    ],
)
def test_short_port_syntax(short: str, ports: list[Port]) -> None:
    spec, _ = parse({"services": {"a": {"image": "x", "ports": [short]}}})
    assert spec.services["a"].ports == ports


def test_published_range_for_one_port_takes_the_first() -> None:
    spec, warnings = parse({"services": {"a": {"image": "x", "ports": ["8000-8010:80"]}}})
    assert spec.services["a"].ports == [Port(target=80, published=8000)]
    assert [f.key for f in warnings] == ["services.a.ports[0]", "services.a.ports[0]"]


@pytest.mark.parametrize(
    ("entry", "mount"),
    [
        ("data:/data", Mount(type="volume", source="data", target="/data")),
        ("data:/data:ro", Mount(type="volume", source="data", target="/data", read_only=True)),
        ("/data", Mount(type="volume", target="/data")),
        ("/srv:/srv:rw", Mount(type="bind", source="/srv", target="/srv")),
        ("./rel:/rel", Mount(type="bind", source="./rel", target="/rel")),
        ("~/x:/x:ro,Z", Mount(type="bind", source="~/x", target="/x", read_only=True)),
    ],
)
def test_short_volume_syntax(entry: str, mount: Mount) -> None:
    spec, _ = parse(
        {"services": {"a": {"image": "x", "volumes": [entry]}}, "volumes": {"data": {}}}
    )
    assert spec.services["a"].volumes == [mount]


@pytest.mark.parametrize(
    ("value", "mounts"),
    [
        ("/run", [Mount(type="tmpfs", target="/run")]),
        (
            ["/run:size=1m", "/tmp:ro"],
            [
                Mount(type="tmpfs", target="/run", tmpfs_size=1 << 20),
                Mount(type="tmpfs", target="/tmp", read_only=True),
            ],
        ),
    ],
)
def test_tmpfs_key(value: object, mounts: list[Mount]) -> None:
    spec, _ = parse({"services": {"a": {"image": "x", "tmpfs": value}}})
    assert spec.services["a"].volumes == mounts


def test_healthcheck_spellings() -> None:
    def check(value: object) -> HealthCheck | None:
        spec, _ = parse({"services": {"a": {"image": "x", "healthcheck": value}}})
        return spec.services["a"].healthcheck

    assert check({"test": ["NONE"]}) is None
    assert check({"disable": True, "test": "x"}) is None
    found = check({"test": ["CMD-SHELL", "curl -f localhost"], "timeout": "2s", "retries": "4"})
    assert found is not None
    assert (found.test, found.timeout, found.retries) == (
        ["CMD-SHELL", "curl -f localhost"],
        2.0,
        4,
    )


def test_environment_and_labels_spellings() -> None:
    spec, _ = parse(
        {
            "services": {
                "a": {
                    "image": "x",
                    "environment": ["A=1", "B=with=equals", "C=", "UNSET"],
                    "labels": {"n": 1, "f": 2.0, "b": True, "z": None},
                }
            }
        }
    )
    service = spec.services["a"]
    assert service.environment == {"A": "1", "B": "with=equals", "C": ""}
    assert service.labels == {"n": "1", "f": "2", "b": "true", "z": ""}


def test_restart_spellings() -> None:
    def restart(value: object) -> tuple[str, int | None]:
        spec, _ = parse({"services": {"a": {"image": "x", "restart": value}}})
        return spec.services["a"].restart, spec.services["a"].restart_max_attempts

    assert restart("no") == ("no", None)
    assert restart(False) == ("no", None)
    assert restart("on-failure") == ("on-failure", None)
    assert restart("on-failure:3") == ("on-failure", 3)


EXTENDS = dedent("""\
    services:
      base:
        image: app:1
        command: serve
        environment: [A=1, B=2]
        volumes: [data:/data, /srv/cache:/cache]
        ports: ["80"]
        healthcheck: {test: check, interval: 5s}
      worker:
        extends: base
        command: work
        environment: {B: 3, C: 4}
        volumes: [other:/data]
        ports: ["81"]
        healthcheck: {retries: 9}
        restrt: always
      deep:
        extends: {service: worker}
        restart: always
      broken:
        extends: nowhere
        image: x
      loop-a:
        extends: loop-b
        image: x
      loop-b:
        extends: loop-a
    volumes: {data: {}, other: {}}
    """)


def test_extends_merges_like_compose() -> None:
    findings = validate(EXTENDS)
    fixed = EXTENDS.replace("restrt", "restart").replace("extends: nowhere", "extends: base")
    fixed = fixed.replace("extends: loop-a", "image: y")
    spec, _ = parse(fixed)
    worker = spec.services["worker"]
    assert worker.image == "app:1"
    assert worker.command == ["work"]
    assert worker.environment == {"A": "1", "B": "3", "C": "4"}
    assert worker.volumes == [
        Mount(type="volume", source="other", target="/data"),
        Mount(type="bind", source="/srv/cache", target="/cache"),
    ]
    assert worker.ports == [Port(target=80), Port(target=81)]
    assert worker.healthcheck is not None
    assert (worker.healthcheck.test, worker.healthcheck.interval) == (["CMD-SHELL", "check"], 5)
    assert worker.healthcheck.retries == 9
    deep = spec.services["deep"]
    assert (deep.command, deep.restart, deep.environment["C"]) == (["work"], "always", "4")
    assert spec.services["loop-a"].image == "x"
    # Findings point at the line each value was written on.
    assert [(f.level, f.key, f.line) for f in findings] == [
        ("warning", "services.base.volumes[1]", 6),
        ("warning", "services.worker.volumes[1]", 6),
        ("warning", "services.deep.volumes[1]", 6),
        ("error", "services.worker.restrt", 16),
        ("error", "services.deep.restrt", 16),
        ("error", "services.broken.extends", 21),
        ("error", "services.loop-b", 26),  # its extends is dropped, and with it the image
        ("error", "services.loop-b.extends", 27),
    ]
    assert "loops (loop-a -> loop-b -> loop-a)" in findings[7].message
