from __future__ import annotations

import pytest

from edgefleet.labels import LabelError, check_labels, parse_assignments, parse_selector


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("site=chicago", {"site": "chicago"}, True),
        ("site=chicago", {"site": "austin"}, False),
        ("site==chicago", {"site": "chicago"}, True),
        ("tier!=test", {}, True),
        ("tier!=test", {"tier": "test"}, False),
        ("site=chicago,tier!=test", {"site": "chicago", "tier": "prod"}, True),
        ("site in (a, b)", {"site": "b"}, True),
        ("site notin (a,b)", {"site": "b"}, False),
        ("site notin (a,b)", {}, True),
        ("gpu", {"gpu": ""}, True),
        ("!gpu", {"gpu": ""}, False),
        ("example.com/role=probe", {"example.com/role": "probe"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_selector_semantics(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(selector).matches(labels) is expected


@pytest.mark.parametrize("bad", ["=x", "a=b c", "k in ()", "-bad=x", "k=v!", "k=(x"])
def test_bad_selectors_are_refused(bad: str) -> None:
    with pytest.raises(LabelError):
        parse_selector(bad)


def test_label_rules() -> None:
    assert check_labels({"site": "a", "x.io/y": "", "a_b-c.d": "e"}) == {
        "site": "a",
        "x.io/y": "",
        "a_b-c.d": "e",
    }
    for bad in ({"": "x"}, {"-a": "x"}, {"a": "b c"}, {"a" * 64: "x"}, {"UPPER.io/x": "y"}):
        with pytest.raises(LabelError):
            check_labels(bad)
    assert parse_assignments(["a=1", "b="]) == {"a": "1", "b": ""}
    with pytest.raises(LabelError):
        parse_assignments(["novalue"])
