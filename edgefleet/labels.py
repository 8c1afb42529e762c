"""Labels and label selectors, with Kubernetes' rules so users' habits carry over.

A label key is ``[prefix/]name``: name up to 63 characters of letters,
digits, ``-``, ``_``, ``.``, starting and ending alphanumeric; the optional
prefix is a DNS subdomain. A value is empty or follows the name rule.

Selectors (``site=chicago,tier!=test``) accept ``k=v``, ``k==v``, ``k!=v``,
``k in (a,b)``, ``k notin (a,b)``, ``k`` (exists) and ``!k`` (absent),
joined by commas; all terms must hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


class LabelError(ValueError):
    pass


def check_key(key: str) -> str:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        raise LabelError(f"label key {key!r}: prefix must be a DNS subdomain")
    if not _NAME.match(name):
        raise LabelError(
            f"label key {key!r}: must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return key


def check_value(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise LabelError(f"label {key!r}: value must be a string, not {type(value).__name__}")
    if value and not _NAME.match(value):
        raise LabelError(
            f"label {key!r}: value {value!r} must be empty or 1-63 letters, digits, "
            "'-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


def check_labels(labels: dict[str, object]) -> dict[str, str]:
    return {check_key(k): check_value(k, v) for k, v in labels.items()}


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, str]:
    """``["k=v", ...]`` from the command line into a checked dict."""
    labels: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise LabelError(f"label {item!r}: expected key=value")
        labels[check_key(key.strip())] = check_value(key, value.strip())
    return labels


Op = Literal["=", "!=", "in", "notin", "exists", "!exists"]


@dataclass(frozen=True)
class Requirement:
    key: str
    op: Op
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        return not present or value not in self.values  # != and notin, as in Kubernetes


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: dict[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    def __str__(self) -> str:
        parts = []
        for r in self.requirements:
            if r.op == "exists":
                parts.append(r.key)
            elif r.op == "!exists":
                parts.append("!" + r.key)
            elif r.op in ("in", "notin"):
                parts.append(f"{r.key} {r.op} ({','.join(r.values)})")
            else:
                parts.append(f"{r.key}{r.op}{r.values[0]}")
        return ",".join(parts)

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> Selector:
        return cls(
            tuple(Requirement(check_key(k), "=", (check_value(k, v),)) for k, v in labels.items())
        )


_TERM = re.compile(
    r"\s*(?:"
    r"(?P<notexists>!\s*(?P<nk>[^\s,=!()]+))"
    r"|(?P<setkey>[^\s,=!()]+)\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\)"
    r"|(?P<key>[^\s,=!()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s,=!()]*)"
    r"|(?P<exists>[^\s,=!()]+)"
    r")\s*(?:,|$)"
)


def parse_selector(text: str) -> Selector:
    text = text.strip()
    if not text:
        return Selector(())
    requirements: list[Requirement] = []
    pos = 0
    while pos < len(text):
        match = _TERM.match(text, pos)
        if match is None or match.end() == pos:
            raise LabelError(f"selector {text!r}: cannot parse near {text[pos:]!r}")
        pos = match.end()
        if match["notexists"]:
            requirements.append(Requirement(check_key(match["nk"]), "!exists"))
        elif match["setkey"]:
            key = check_key(match["setkey"])
            values = tuple(
                check_value(key, v.strip()) for v in match["set"].split(",") if v.strip()
            )
            if not values:
                raise LabelError(f"selector {text!r}: '{key} {match['setop']} ()' needs values")
            op: Op = "in" if match["setop"] == "in" else "notin"
            requirements.append(Requirement(key, op, values))
        elif match["key"]:
            key = check_key(match["key"])
            value = check_value(key, match["value"])
            requirements.append(Requirement(key, "!=" if match["op"] == "!=" else "=", (value,)))
        else:
            requirements.append(Requirement(check_key(match["exists"]), "exists"))
    return Selector(tuple(requirements))
