"""Calls about who may do what: the server's sign-in, users, API tokens,
projects and their members, and provisioning keys."""

from __future__ import annotations

from edgefleet.client import models
from edgefleet.client.transport import JSON, Transport


class AccessCalls(Transport):
    # -- server and sign-in ---------------------------------------------------------------

    def health(self) -> JSON:
        """The server's health (``{"status": "ok", ...}``); no token needed.
        Raises ConnectionFailed when the server cannot be reached."""
        return self._get(JSON, "/health")

    def me(self) -> models.User:
        """The user the token belongs to, with their projects and roles.
        Raises Unauthorized for a missing, revoked or expired token."""
        return self._get(models.User, "/users/me")

    def oidc_info(self) -> models.OidcInfo:
        """Whether the server offers single sign-on (``enabled``), its ``issuer``, and
        the ``cli_url`` a browser opens for :meth:`oidc_token`'s code. No token needed."""
        return self._get(models.OidcInfo, "/auth/oidc")

    def oidc_token(
        self, code: str, code_verifier: str, name: str = "edgefleet login --sso"
    ) -> models.SsoToken:
        """Redeem the one-time code of a single sign-on begun at ``cli_url`` with the
        challenge ``S256(code_verifier)`` for an API token (``{"token", "user",
        "expires_at"}``). A code is good for one attempt; a wrong verifier burns it
        (Unauthorized)."""
        body = {"code": code, "code_verifier": code_verifier, "name": name}
        return self._send(models.SsoToken, "POST", "/auth/oidc/token", body)

    def oidc_device_start(self) -> models.SsoDeviceStart:
        """Begin a device sign-in (when ``oidc_info()["device_flow"]``): ``{"handle",
        "user_code", "verification_uri", "verification_uri_complete", "interval"}``.
        Keep ``handle`` secret: it is what :meth:`oidc_device_token` redeems."""
        return self._send(models.SsoDeviceStart, "POST", "/auth/oidc/device")

    def oidc_device_token(
        self, handle: str, name: str = "edgefleet login --sso"
    ) -> models.SsoDevicePoll:
        """Poll a device sign-in once: ``{"status": "authorization_pending" | "slow_down"}``
        until the user approves, then ``{"token", "user", "expires_at"}`` (once).
        Raises Unauthorized when the sign-in was denied or has expired."""
        body = {"handle": handle, "name": name}
        return self._send(models.SsoDevicePoll, "POST", "/auth/oidc/device/token", body)

    # -- users and tokens -----------------------------------------------------------------

    def users(self) -> list[models.User]:
        """Every user (administrators only: Forbidden otherwise)."""
        return self._all(models.User, "/users")

    def create_user(
        self, name: str, password: str | None = None, admin: bool = False
    ) -> models.User:
        """Create a user (administrators only). Raises Conflict if the name is taken,
        Invalid for a password the server refuses."""
        body = {"name": name, "password": password, "admin": admin}
        return self._send(models.User, "POST", "/users", body)

    def set_password(self, user: str, password: str, current_password: str | None = None) -> None:
        """Set a user's portal password. Your own needs ``current_password`` (the
        server answers 403 when it is wrong); administrators reset others' without
        it. The user's other portal sessions end."""
        body = {"password": password}
        if current_password is not None:
            body["current_password"] = current_password
        self.put(f"/users/{user}/password", body)

    def delete_user(self, user: str) -> None:
        """Delete a user and their tokens (administrators only; NotFound if unknown)."""
        self.delete(f"/users/{user}")

    def tokens(self, user: str | None = None, all_users: bool = False) -> list[models.Token]:
        """Your API tokens, another ``user``'s, or (``all_users``) everyone's; the
        last two are for administrators (Forbidden otherwise)."""
        return self._all(models.Token, "/tokens", user=user, all=all_users or None)

    def create_token(
        self, name: str = "", *, user: str | None = None, expires_in: int | None = None
    ) -> models.TokenCreated:
        """A new API token (for ``user``: administrators only), expiring after
        ``expires_in`` seconds if given. Its secret ``token`` is answered only once."""
        body = {"name": name, "user": user, "expires_in": expires_in}
        return self._send(models.TokenCreated, "POST", "/tokens", body)

    def revoke_token(self, token_id: str) -> models.Token:
        """Revoke a token at once; answers its metadata. NotFound if unknown."""
        return self._send(models.Token, "DELETE", f"/tokens/{token_id}")

    # -- projects -------------------------------------------------------------------------

    def projects(self) -> list[models.Project]:
        """The projects you belong to (every project for an administrator)."""
        return self._all(models.Project, "/projects")

    def project(self, ref: str) -> models.Project:
        """One project by name or id, with its members. NotFound if you cannot see it."""
        return self._get(models.Project, f"/projects/{ref}")

    def create_project(self, name: str, description: str = "") -> models.Project:
        """Create a project; you become its owner. Conflict if the name is taken."""
        body = {"name": name, "description": description}
        return self._send(models.Project, "POST", "/projects", body)

    def delete_project(self, ref: str) -> None:
        """Delete a project (owners; Conflict while it still has devices)."""
        self.delete(f"/projects/{ref}")

    def add_member(self, project: str, user: str, role: str) -> models.Project:
        """Give ``user`` a ``role`` (viewer, developer, operator, owner) in ``project``; answers
        the project. Forbidden without the right to manage members; Invalid for an unknown role."""
        body = {"user": user, "role": role}
        return self._send(models.Project, "POST", f"/projects/{project}/members", body)

    def remove_member(self, project: str, user: str) -> None:
        """Take ``user`` out of ``project`` (Forbidden without the right to manage members)."""
        self.delete(f"/projects/{project}/members/{user}")

    # -- provisioning keys ----------------------------------------------------------------

    def keys(self, project: str | None = None) -> list[models.ProvisioningKey]:
        """Provisioning keys (of one ``project``, else of all yours); never their secrets."""
        return self._all(models.ProvisioningKey, "/provisioning-keys", project=project)

    def create_key(
        self,
        project: str = "default",
        *,
        labels: dict[str, str] | None = None,
        name: str = "",
        expires_in: int | None = None,
        max_uses: int | None = None,
    ) -> models.ProvisioningKeyCreated:
        """A key devices enroll with into ``project``, carrying ``labels`` to each;
        it stops after ``expires_in`` seconds or ``max_uses`` enrollments. Its secret
        ``key`` is answered only once. Forbidden without that right in the project."""
        body = {
            "project": project,
            "labels": labels or {},
            "name": name,
            "expires_in": expires_in,
            "max_uses": max_uses,
        }
        return self._send(models.ProvisioningKeyCreated, "POST", "/provisioning-keys", body)

    def revoke_key(self, key_id: str) -> models.ProvisioningKey:
        """Revoke a provisioning key: no new enrollments with it. NotFound if unknown."""
        return self._send(models.ProvisioningKey, "DELETE", f"/provisioning-keys/{key_id}")
