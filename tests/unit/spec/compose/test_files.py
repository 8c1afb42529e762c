"""Compose ``secrets:`` and ``configs:``: project objects, delivered as files."""

from __future__ import annotations

import pytest

from edgefleet.spec.compose import parse, validate

FILE = """
services:
  app:
    image: x
    secrets: [db, {source: api, target: token.txt, mode: "0400"}]
    configs: [motd, {source: conf, target: /etc/app.conf}]
secrets:
  db: {external: true}
  api: {external: true, name: api_token}
configs:
  motd: {content: "hello\\n"}
  conf: {external: true, name: APP_CONF}
"""


def test_short_and_long_syntax() -> None:
    spec, warnings = parse(FILE)
    assert warnings == []
    app = spec.services["app"]
    assert [(r.source, r.target, r.mode) for r in app.secrets] == [
        ("db", "/run/secrets/db", None),
        ("api", "/run/secrets/token.txt", 0o400),
    ]
    assert [(r.source, r.target) for r in app.configs] == [
        ("motd", "/motd"),
        ("conf", "/etc/app.conf"),
    ]
    assert spec.secrets["api"].name == "api_token" and spec.secrets["db"].external
    assert spec.configs["motd"].content == "hello\n"
    assert spec.configs["conf"].name == "APP_CONF"


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("services: {a: {image: x, secrets: [nope]}}", "services.a.secrets[0]", "not declared"),
        (
            "services: {a: {image: x}}\nsecrets: {s: {file: ./s.txt}}",
            "secrets.s.file",
            "project secret",
        ),
        (
            "services: {a: {image: x}}\nsecrets: {s: {content: pw}}",
            "secrets.s.content",
            "does not belong",
        ),
        ("services: {a: {image: x}}\nsecrets: {s: {}}", "secrets.s", "external: true"),
        (
            "services: {a: {image: x, secrets: [{source: s, target: ../../etc/shadow}]}}\n"
            "secrets: {s: {external: true}}",
            "services.a.secrets[0].target",
            "without '..'",
        ),
        (
            "services: {a: {image: x, secrets: [s, {source: s, target: s}]}}\n"
            "secrets: {s: {external: true}}",
            "services.a.secrets",
            "same file",
        ),
        (
            "services: {a: {command: [x], x-edgefleet-runtime: process, configs: [c]}}\n"
            "configs: {c: {content: x}}",
            "services.a.configs",
            "container",
        ),
        (
            "services: {a: {image: x, secrets: [{source: s, mode: rwx}]}}\n"
            "secrets: {s: {external: true}}",
            "services.a.secrets[0].mode",
            "octal",
        ),
    ],
)
def test_refused_with_the_key_and_the_way_out(text: str, key: str, words: str) -> None:
    errors = [f for f in validate(text) if f.level == "error"]
    assert any(f.key == key and words in f.message for f in errors), errors
