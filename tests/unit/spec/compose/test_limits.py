"""The Compose loader's budget: bombs and malformed text end as findings,
quickly, with a line and column, never as another exception."""

from __future__ import annotations

import contextlib
import time

import pytest

from edgefleet.spec import compose
from edgefleet.spec.findings import SpecInvalid
from edgefleet.spec.loader import Budget, budget, load_with_lines


def laughs(width: int = 10, levels: int = 9, leaf: str = "lol") -> str:
    """The billion laughs: ``width ** levels`` copies of ``leaf`` once expanded."""
    text = f'a0: &a0 ["{leaf}"' + f', "{leaf}"' * (width - 1) + "]\n"
    for i in range(1, levels):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]\n"
    return text + "services: {web: {image: nginx}}\n"


def refused(text: str, limits: Budget | None = None) -> dict[str, object]:
    started = time.monotonic()
    with pytest.raises(SpecInvalid) as caught:
        load_with_lines(text, limits)
    assert time.monotonic() - started < 3, "refusing must not take long"
    (finding,) = caught.value.findings
    assert finding.level == "error"
    # compose.validate never raises: the same problem is one finding.
    with budget(limits) if limits else contextlib.nullcontext():
        (again,) = [f for f in compose.validate(text) if f.level == "error"]
    assert again.message == finding.message
    return finding.to_dict()


def test_billion_laughs_stops_at_the_value_budget() -> None:
    finding = refused(laughs())
    assert "expands to more than 50000 values" in str(finding["message"])
    assert finding["line"] is not None and finding["column"] is not None


def test_aliases_repeating_a_large_value_stop_at_the_byte_budget() -> None:
    # 2**30 copies of a 1000-byte string: few values, a terabyte of text.
    finding = refused(laughs(width=2, levels=30, leaf="x" * 1000))
    assert finding["message"] == (
        "the document expands past 4 MiB (YAML aliases repeating large values?)"
    )


def test_the_byte_budget_is_the_server_setting() -> None:
    text = "services: {web: {image: nginx, command: [" + ", ".join(["abcdefgh"] * 200) + "]}}\n"
    # Within every size limit, so only the clock can refuse it: with time to
    # spare it reads (a wall-clock 2 s default would make this a timing test on
    # a loaded machine), with none it is refused by name.
    with budget(Budget(seconds=600.0)):
        load_with_lines(text)
    with budget(Budget(max_bytes=1000)):
        finding = refused(text)
    assert finding["message"] == (
        "the document expands past 1000 bytes (YAML aliases repeating large values?)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "services: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "services: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n",
        "services:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "\n",
    ],
    ids=["flow-lists", "flow-maps", "block-maps"],
)
def test_deep_nesting_is_refused_before_the_recursion_limit(text: str) -> None:
    finding = refused(text)
    assert finding["message"] == "the document nests deeper than 32 levels"
    assert finding["line"] is not None


@pytest.mark.parametrize(
    "text",
    [
        "services: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "services: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n",
    ],
    ids=["flow-lists", "flow-maps"],
)
def test_deep_flow_nesting_is_named_before_the_scanner_reads_ahead(text: str) -> None:
    # The scanner reads a run of openers ahead of the composer: counted only
    # there, 100,000 of them took ~0.3 s of CPU, and a loaded server's
    # low-priority parser answered "took longer than 2 s" instead. A budget of
    # 50 ms leaves no room for that read-ahead.
    finding = refused(text, Budget(seconds=0.05))
    assert finding["message"] == "the document nests deeper than 32 levels"
    assert finding["line"] == 1 and 11 < int(str(finding["column"])) < 200  # at the 33rd opener


def test_nesting_through_aliases_counts_too() -> None:
    text = "a: &a " + "[" * 20 + "x" + "]" * 20 + "\nb: &b " + "[*a, " * 20 + "1" + "]" * 20
    finding = refused(text + "\nservices: {}\n")
    assert "nests deeper than 32 levels once its YAML aliases are expanded" in str(
        finding["message"]
    )


@pytest.mark.parametrize(
    ("char", "code"), [("\x01", "#x0001"), ("\x00", "#x0000"), ("\ufffe", "#xfffe")]
)
def test_a_non_printable_character_is_named_with_its_place(char: str, code: str) -> None:
    finding = refused(f"services:\n  web:\n    image: ngi{char}nx\n")
    assert finding["message"] == (
        f"the file holds a non-printable character ({code}); YAML allows only printable "
        "characters, tabs and line breaks"
    )
    assert (finding["line"], finding["column"]) == (3, 15)


def test_a_huge_key_is_refused_without_echoing_it() -> None:
    finding = refused("services:\n  ? " + "k" * 400_000 + "\n  : {image: x}\n")
    assert finding["message"] == (
        "a mapping key is 400000 characters long (starting 'kkkkkkkkkkkkkkkkkkkk'); "
        "keys may be at most 1024"
    )
    assert (finding["line"], finding["column"]) == (2, 5)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1" * 5000, "'11111111111111111111…' (5000 characters) cannot be read as int"),
        ("!!int abc", "'abc' (3 characters) cannot be read as int"),
        ("!!float x1", "'x1' (2 characters) cannot be read as float"),
    ],
)
def test_scalars_python_cannot_read_are_findings(value: str, message: str) -> None:
    finding = refused(f"services:\n  web:\n    image: nginx\n    x-n: {value}\n")
    assert finding["message"] == message
    assert finding["line"] == 4


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        ("services:\n  a: {}\n  a: {}\n", "key 'a' appears twice in the same mapping", (3, 3)),
        ("services:\n  [a]: {}\n", "a mapping key must be a plain string", (2, 3)),
        ("services: *nope\n", "found undefined alias 'nope'", (1, 11)),
        ("services:\n\tweb: {}\n", "found character '\\t' that cannot start any token", (2, 1)),
        ("a: 1\n---\nb: 2\n", "expected a single document in the stream", (2, 1)),
        (
            "services: {a: !!python/object:os.system x}\n",
            "could not determine a constructor",
            (1, 15),
        ),
    ],
)
def test_every_yaml_error_is_one_finding_with_line_and_column(
    text: str, message: str, where: tuple[int, int]
) -> None:
    finding = refused(text)
    assert message in str(finding["message"])
    assert (finding["line"], finding["column"]) == where


def test_the_time_budget_stops_a_slow_document() -> None:
    text = "services:\n" + "".join(f"  s{i}: {{image: x{i}}}\n" for i in range(3000))
    # Within every size limit, so only the clock can refuse it: with time to
    # spare it reads (a wall-clock 2 s default would make this a timing test on
    # a loaded machine), with none it is refused by name.
    with budget(Budget(seconds=600.0)):
        load_with_lines(text)
    finding = refused(text, Budget(seconds=0.0))
    assert finding["message"] == (
        "reading the document took longer than 0 s; it is too large or too complex"
    )


def test_a_real_file_with_anchors_is_well_within_budget() -> None:
    text = "x-common: &common\n  restart: always\n  environment: {A: '1'}\nservices:\n" + "".join(
        f"  s{i}:\n    <<: *common\n    image: app:{i}\n" for i in range(200)
    )
    data, lines = load_with_lines(text, Budget(max_bytes=64 * 1024, max_nodes=5000))
    assert data["services"]["s199"] == {
        "restart": "always",
        "environment": {"A": "1"},
        "image": "app:199",
    }
    assert lines[("services", "s0", "image")] == 7
