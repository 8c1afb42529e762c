"""Attacks on alert rules and webhooks: roles that may not manage them, another
project's rules/webhooks/alerts, webhooks aimed at internal addresses (SSRF),
oversized and malformed bodies, and the webhook secret after its one showing.
Everything a test creates it removes, so the shared estate stays as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.security.conftest import OUTSIDER, Estate, P, Q

RULES = f"/api/v1/projects/{P}/alert-rules"
HOOKS = f"/api/v1/projects/{P}/webhooks"
PUBLIC_URL = "http://93.184.216.34/hook"  # a public address literal: no DNS needed


@pytest.fixture
def rule_and_hook(estate: Estate) -> Iterator[tuple[str, str, str]]:
    """A rule and a webhook in P, made by P's owner; their ids and the webhook's secret."""
    with estate.http("owner") as http:
        rule = http.post(RULES, json={"name": "sec-disk", "kind": "disk_above", "threshold": 95})
        hook = http.post(HOOKS, json={"name": "sec-hook", "url": PUBLIC_URL})
        assert rule.status_code == 201 and hook.status_code == 201, (rule.text, hook.text)
        yield rule.json()["id"], hook.json()["id"], hook.json()["secret"]
        assert http.delete(f"{RULES}/{rule.json()['id']}").status_code == 204
        assert http.delete(f"{HOOKS}/{hook.json()['id']}").status_code == 204


def test_only_owners_and_operators_manage_rules_and_webhooks(
    estate: Estate, rule_and_hook: tuple[str, str, str]
) -> None:
    rule, hook, _secret = rule_and_hook
    for who in ("viewer", "developer"):
        with estate.http(who) as http:
            made = http.post(RULES, json={"name": "mine", "kind": "job_failed"})
            assert made.status_code == 403, (who, made.text)
            assert http.post(HOOKS, json={"name": "m", "url": PUBLIC_URL}).status_code == 403
            assert http.patch(f"{RULES}/{rule}", json={"enabled": False}).status_code == 403
            assert http.delete(f"{HOOKS}/{hook}").status_code == 403
            assert http.get(f"{RULES}/{rule}").json()["enabled"] is True  # reads are fine
    with estate.http("owner") as http:
        assert [r["name"] for r in http.get(RULES).json()["items"]] == ["sec-disk"]


def test_another_projects_rules_webhooks_and_alerts_are_not_found(
    estate: Estate, rule_and_hook: tuple[str, str, str]
) -> None:
    rule, hook, _secret = rule_and_hook
    with estate.http(OUTSIDER) as http:
        for path in (RULES, HOOKS, f"/api/v1/projects/{P}/alerts", f"{RULES}/{rule}"):
            assert http.get(path).status_code == 404, path
        assert http.patch(f"{RULES}/{rule}", json={"enabled": False}).status_code == 404
        assert http.delete(f"{HOOKS}/{hook}").status_code == 404
        assert http.post(RULES, json={"name": "x", "kind": "job_failed"}).status_code == 404
        # P's ids through the outsider's own project: still not found
        assert http.get(f"/api/v1/projects/{Q}/alert-rules/{rule}").status_code == 404
        assert http.delete(f"/api/v1/projects/{Q}/webhooks/{hook}").status_code == 404
    with estate.http("owner") as http:
        assert http.get(f"{RULES}/{rule}").json()["enabled"] is True


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8400/api/v1/health",  # loopback: off unless the admin allows it
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.7/hook",
        "http://[::1]/hook",
        "file:///etc/passwd",
        "http://user:pw@93.184.216.34/hook",
    ],
)
def test_webhooks_to_disallowed_hosts_are_refused(estate: Estate, url: str) -> None:
    with estate.http("owner") as http:
        refused = http.post(HOOKS, json={"name": "ssrf", "url": url})
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == "url"
        assert http.get(HOOKS).json()["items"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x" * 65, "kind": "job_failed"}, "name"),
        ({"name": "bad name/../", "kind": "job_failed"}, "name"),
        ({"name": "k", "kind": "cpu_on_fire"}, "kind"),
        ({"name": "k", "kind": "disk_above"}, "threshold"),
        ({"name": "k", "kind": "disk_above", "threshold": 150}, "threshold"),
        ({"name": "k", "kind": "backlog_above", "threshold": -1}, "threshold"),
        ({"name": "k", "kind": "device_offline", "for_seconds": 1e9}, "for_seconds"),
        ({"name": "k", "kind": "job_failed", "script": "rm -rf /"}, "script"),
        ({"name": "k", "kind": "job_failed", "enabled": "maybe"}, "enabled"),
    ],
)
def test_malformed_rules_are_refused_naming_the_field(
    estate: Estate, body: dict[str, object], field: str
) -> None:
    with estate.http("owner") as http:
        refused = http.post(RULES, json=body)
        assert refused.status_code == 422, refused.text
        assert field in (refused.json()["error"].get("field") or "") + refused.text
        assert http.get(RULES).json()["items"] == []


def test_oversized_bodies_are_refused(estate: Estate) -> None:
    with estate.http("owner") as http:
        huge = http.post(RULES, json={"name": "k", "kind": "job_failed", "pad": "x" * 5_000_000})
        assert huge.status_code in (413, 422), huge.status_code
        long_url = http.post(HOOKS, json={"name": "k", "url": PUBLIC_URL + "?" + "a" * 3000})
        assert long_url.status_code == 422 and long_url.json()["error"]["field"] == "url"
        not_json = http.post(RULES, content=b"{kind:", headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422
        assert http.get(RULES).json()["items"] == [] and http.get(HOOKS).json()["items"] == []


def test_the_webhook_secret_is_shown_once(
    estate: Estate, rule_and_hook: tuple[str, str, str]
) -> None:
    _rule, hook, secret = rule_and_hook
    assert secret.startswith("whsec_") and len(secret) > 30
    with estate.http("owner") as http:
        answers = [
            http.get(HOOKS),
            http.get(f"{HOOKS}/{hook}"),
            http.patch(f"{HOOKS}/{hook}", json={"enabled": True}),
        ]
    with estate.http("viewer") as http:
        answers.append(http.get(HOOKS))
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and "secret" not in answer.text
