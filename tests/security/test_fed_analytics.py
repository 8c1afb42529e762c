"""Attacks on federated analytics (issue 15): the analyst of another project, a
role without the right to compute, and malformed or oversized queries. Each is
refused with a 4xx that names the field, and nothing is stored: no computation
record, nothing sent to a device."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security.conftest import OUTSIDER, Estate, P, Q


def _body(estate: Estate, **fields: Any) -> dict[str, Any]:
    return {
        "project": P,
        "dataset": "d",
        "op": "sum",
        "column": "v",
        "devices": [estate.device],
    } | fields


def _computations(estate: Estate) -> list[str]:
    """Project P's computations (a refusal in Q is audited in Q, and says nothing of P)."""
    with estate.http() as admin:
        got = admin.get("/api/v1/computations", params={"project": P})
        got.raise_for_status()
        return [c["id"] for c in got.json()["items"]]


def test_another_projects_analyst_and_a_viewer_are_refused(estate: Estate) -> None:
    before = _computations(estate)
    analytics = {"where": [{"column": "v", "op": ">", "value": 1.0}], "columns": ["w"]}
    with estate.http(OUTSIDER) as outsider:
        # P does not exist for the outsider; naming P's device from Q finds nothing either
        hidden = outsider.post("/api/v1/computations", json=_body(estate, **analytics))
        assert hidden.status_code == 404, hidden.text
        assert estate.device not in hidden.text
        from_q = outsider.post("/api/v1/computations", json=_body(estate, project=Q))
        assert from_q.status_code == 422 and from_q.json()["error"]["field"] == "devices"
        listed = outsider.get("/api/v1/datasets", params={"device": estate.device})
        assert listed.status_code == 200 and listed.json()["items"] == []
    with estate.http("viewer") as viewer:
        denied = viewer.post("/api/v1/computations", json=_body(estate, op="ols", columns=["w"]))
        assert denied.status_code == 403, denied.text
    assert _computations(estate) == before


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"where": [{"column": "v", "op": "LIKE", "value": "a%"}]}, "where"),
    ({"where": [{"column": "v", "op": ">", "value": "abc"}]}, "where"),
    ({"where": [{"column": "v", "op": "in", "value": 3.0}]}, "where"),
    ({"where": [{"column": "v", "op": "==", "value": [1.0, 2.0]}]}, "where"),
    ({"where": [{"column": "v", "op": "==", "value": {"$ne": 1}}]}, "where"),
    ({"where": "v > 1; DROP TABLE computations"}, "where"),
    ({"group_by": "site"}, "groups"),
    ({"group_by": "site", "groups": ["a", "a"]}, "groups"),
    ({"op": "histogram", "bins": [0.0, 1.0], "group_by": "s", "groups": ["a"]}, "group_by"),
    ({"groups": ["a"]}, "groups"),
    ({"op": "quantile", "bins": [0.0, 1.0], "quantiles": [1.5]}, "quantiles"),
    ({"op": "ols"}, "columns"),
    ({"op": "covariance"}, "columns"),
    ({"epsilon": 0.5}, "bounds"),
    ({"epsilon": -1.0}, "epsilon"),
    ({"epsilon": 0.5, "bounds": {"v": [5.0, 1.0]}}, "bounds"),
    ({"column": None, "columns": []}, "body"),
]
OVERSIZED: list[tuple[dict[str, Any], str]] = [
    ({"where": [{"column": "v", "op": ">", "value": float(i)} for i in range(17)]}, "where"),
    ({"where": [{"column": "v", "op": "in", "value": [str(i) for i in range(101)]}]}, "where"),
    ({"group_by": "s", "groups": [str(i) for i in range(101)]}, "groups"),
    ({"columns": [f"c{i}" for i in range(17)]}, "columns"),
    ({"op": "quantile", "bins": [0.0, 1.0], "quantiles": [0.5] * 100}, "quantiles"),
    ({"column": "x" * 257}, "column"),
    ({"group_by": "s", "groups": ["y" * 257]}, "groups"),
    ({"op": "quantile", "bins": [float(i) for i in range(1002)], "quantiles": [0.5]}, "bins"),
]


@pytest.mark.parametrize(("fields", "field"), MALFORMED + OVERSIZED)
def test_malformed_and_oversized_queries_are_refused_naming_the_field(
    estate: Estate, fields: dict[str, Any], field: str
) -> None:
    before = _computations(estate)
    with estate.http("developer") as developer:
        answer = developer.post("/api/v1/computations", json=_body(estate, **fields))
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["field"] == field or error["field"].startswith(f"{field}."), error
    assert _computations(estate) == before
