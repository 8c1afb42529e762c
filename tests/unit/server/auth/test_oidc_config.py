"""The role map and the single sign-on settings: pure, no provider needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefleet.server.auth.oidc_config import (
    OidcConfigError,
    granted_roles,
    managed_projects,
    parse_role_map,
)
from edgefleet.server.auth.roles import Role
from edgefleet.server.settings import ServerSettings


def test_inline_role_map() -> None:
    mapping = parse_role_map(" physics=lab-a:developer, ops=lab-a:operator,ops=lab-b:viewer ")
    assert mapping == {
        "physics": {"lab-a": Role.DEVELOPER},
        "ops": {"lab-a": Role.OPERATOR, "lab-b": Role.VIEWER},
    }
    assert managed_projects(mapping) == {"lab-a", "lab-b"}
    assert parse_role_map("") == {}


def test_group_names_may_hold_equals_signs_and_paths() -> None:
    """Keycloak's full group paths; names with '=' (the last one splits; names
    with commas, like LDAP DNs, go in a file)."""
    mapping = parse_role_map("/uni/physics=lab-a:viewer,cn=ops=lab-b:owner")
    assert mapping == {
        "/uni/physics": {"lab-a": Role.VIEWER},
        "cn=ops": {"lab-b": Role.OWNER},
    }


def test_role_map_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "roles.yaml"
    yaml_file.write_text("physics:\n  lab-a: developer\nops:\n  lab-a: owner\n  lab-b: viewer\n")
    assert parse_role_map(str(yaml_file))["ops"] == {"lab-a": Role.OWNER, "lab-b": Role.VIEWER}
    json_file = tmp_path / "roles.json"
    json_file.write_text('{"physics": {"lab-a": "viewer"}}')
    assert parse_role_map(str(json_file)) == {"physics": {"lab-a": Role.VIEWER}}
    inline = parse_role_map('{"physics": {"lab-a": "owner"}}')
    assert inline == {"physics": {"lab-a": Role.OWNER}}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("physics=lab-a:boss", "'boss'.*not a role"),
        ("physics=lab-a", "not 'group=project:role'"),
        ("=lab-a:viewer", "not 'group=project:role'"),
        ("/no/such/file.yaml", "cannot read"),
    ],
)
def test_bad_role_maps_say_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(OidcConfigError, match=says):
        parse_role_map(value)


def test_the_highest_role_wins_and_unmapped_groups_grant_nothing() -> None:
    mapping = parse_role_map("a=p:viewer,b=p:owner,c=p:developer,c=q:operator")
    assert granted_roles(["a", "c"], mapping) == {"p": Role.DEVELOPER, "q": Role.OPERATOR}
    assert granted_roles(["c", "b", "a"], mapping) == {"p": Role.OWNER, "q": Role.OPERATOR}
    assert granted_roles(["nobody", "p", "owner"], mapping) == {}


def _settings(**values: object) -> ServerSettings:
    return ServerSettings(**values)  # type: ignore[arg-type]


def test_settings_refuse_an_insecure_or_incomplete_provider(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be https"):
        _settings(oidc_issuer="http://idp.example.org", oidc_client_id="x")
    with pytest.raises(ValueError, match="--oidc-client-id is required"):
        _settings(oidc_issuer="https://idp.example.org")
    with pytest.raises(ValueError, match="not a role"):
        _settings(oidc_issuer="https://idp.example.org", oidc_client_id="x", oidc_role_map="g=p:x")
    empty = tmp_path / "secret"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        _settings(
            oidc_issuer="https://idp.example.org", oidc_client_id="x", oidc_client_secret_file=empty
        )
    assert _settings(oidc_issuer="http://127.0.0.1:9400", oidc_client_id="x").oidc_issuer
    assert _settings().oidc_issuer is None  # off by default
