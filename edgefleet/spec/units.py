"""Compose's value syntaxes, as pure functions: durations, sizes, booleans,
port numbers. Each raises :class:`ValueError` with words a user can act on;
callers turn that into a finding at the right key."""

from __future__ import annotations

import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNIT = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_UNIT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_TRUE = frozenset({"true", "yes", "y", "on"})
_FALSE = frozenset({"false", "no", "n", "off"})


def parse_duration(value: object) -> float:
    """``"1m30s"``, ``"10s"``, ``"500ms"``, ``"1h"`` (Go syntax, as Compose) -> seconds.
    A plain number is taken as seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 10s, 1m30s or 500ms, not a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration such as 10s, 1m30s or 500ms")
    text = value.strip()
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            break
        total += float(match.group(1)) * _DURATION_UNIT[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        hint = f"; write {text}s for seconds" if text.replace(".", "", 1).isdigit() else ""
        raise ValueError(
            f"{value!r} is not a duration: use a number with a unit (h, m, s, ms, us, ns), "
            f"e.g. 10s or 1m30s{hint}"
        )
    return total


def parse_size(value: object, *, allow_unlimited: bool = False) -> int:
    """``"256M"``, ``"1G"``, ``"512Mi"``, ``"1.5g"`` or an int of bytes -> bytes
    (binary multiples, as Docker reads them)."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 256M or 1G, not a boolean")
    if isinstance(value, int):
        if value == -1 and allow_unlimited:
            return -1
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, float) and value >= 0:
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if allow_unlimited and text == "-1":
            return -1
        match = _SIZE.match(text)
        if match:
            return int(float(match.group(1)) * _SIZE_UNIT[(match.group(2) or "").lower()])
    raise ValueError(f"{value!r} is not a size: use bytes or a number with a unit, e.g. 256M, 1G")


def parse_bool(value: object) -> bool:
    """A YAML boolean, or a string that came from a variable (``"true"``, ``"no"``...)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"expected true or false, not {value!r}")


def parse_int(value: object) -> int:
    """An integer, or a string of digits (interpolated values are strings)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a whole number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    raise ValueError(f"expected a whole number, not {value!r}")


def parse_number(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a number, not {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError(f"expected a number, not {value!r}")


def parse_port(value: object) -> int:
    number = parse_int(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} is out of range: ports are 1 to 65535")
    return number


def parse_port_range(text: object) -> list[int]:
    """``"8080"`` -> [8080]; ``"9090-9092"`` -> [9090, 9091, 9092]."""
    if isinstance(text, int) and not isinstance(text, bool):
        return [parse_port(text)]
    if not isinstance(text, str):
        raise ValueError(f"expected a port number or a range such as 8000-8010, not {text!r}")
    first, sep, last = text.partition("-")
    start = parse_port(first)
    end = parse_port(last) if sep else start
    if end < start:
        raise ValueError(f"port range {text} runs backwards")
    return list(range(start, end + 1))


def scalar_text(value: object) -> str:
    """How Compose writes a scalar into a string (environment values, labels)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
