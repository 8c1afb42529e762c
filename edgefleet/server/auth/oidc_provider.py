"""The OpenID provider as this server sees it: discovery, keys, code exchange,
and the one check that matters, :meth:`OidcProvider.verify_id_token`.

Nothing the provider sends is trusted before it is checked: the discovery
document must name the configured issuer; an ID token must carry a signature
by one of the provider's published keys (asymmetric algorithms only, never
``none`` or a MAC), this issuer, this client in its audience (and as ``azp``
when there are several), an ``exp`` in the future, an ``iat`` not in the
future, and the nonce of the sign-in it answers. The keys are cached; a token
signed with an unknown key id makes one re-read (at most every
``--oidc-jwks-refresh-seconds``), which is how a provider's key rotation is
followed without letting a flood of forged key ids hammer it.

Errors: :class:`edgefleet.server.errors.Unauthorized` for a token that fails a
check, :class:`edgefleet.server.errors.BadGateway` when the provider cannot
be reached or answers nonsense; httpx and joserfc errors are translated here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, ValidationError

from edgefleet.server.auth.oidc_config import OidcConfig
from edgefleet.server.errors import BadGateway, NotFound, Unauthorized

if TYPE_CHECKING:
    # httpx (~4 MB with its client) is imported when single sign-on is configured
    # (OidcProvider is built), not by every server's start (issue 16).
    import httpx

    # joserfc brings ``cryptography`` (~8 MB resident): imported where an ID
    # token is checked, not by every server's start (issue 16).
    from joserfc import jwt
    from joserfc.errors import InvalidClaimError, MissingClaimError
    from joserfc.jwk import KeySet

log = logging.getLogger(__name__)

ASYMMETRIC = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DISCOVERY_TTL = 3600.0
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class Discovery(BaseModel):
    """The parts of ``/.well-known/openid-configuration`` this server uses."""

    model_config = ConfigDict(extra="ignore")

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None = None
    device_authorization_endpoint: str | None = None
    id_token_signing_alg_values_supported: list[str] = ["RS256"]
    token_endpoint_auth_methods_supported: list[str] = ["client_secret_basic"]


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id_token: str
    access_token: str | None = None


class DeviceStart(BaseModel):
    """RFC 8628 device authorization response."""

    model_config = ConfigDict(extra="ignore")

    device_code: str
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None = None
    expires_in: int = 600
    interval: int = 5


class Identity(BaseModel):
    """Who signed in, from a verified ID token (and userinfo, for missing claims)."""

    issuer: str
    subject: str
    claims: dict[str, Any]


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcProvider:
    def __init__(
        self, config: OidcConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        import httpx

        self.config = config
        self._http = httpx.AsyncClient(timeout=config.http_timeout, transport=transport)
        self._discovery: Discovery | None = None
        self._discovered_at = 0.0
        self._keys: KeySet | None = None
        self._keys_read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self._http.aclose()

    # -- talking to the provider ----------------------------------------------------------

    async def _get_json(self, url: str, what: str, **kwargs: Any) -> Any:
        import httpx  # loaded by __init__

        try:
            response = await self._http.get(url, **kwargs)
        except httpx.HTTPError as exc:
            raise BadGateway(f"the sign-in provider is unreachable ({what}): {exc}") from exc
        if response.status_code != 200:
            raise BadGateway(f"the sign-in provider answered {response.status_code} to {what}")
        try:
            return response.json()
        except ValueError as exc:
            raise BadGateway(f"the sign-in provider sent a {what} that is not JSON") from exc

    async def discovery(self) -> Discovery:
        """The provider's metadata, re-read hourly; its issuer must be ours exactly."""
        if self._discovery is not None and time.monotonic() - self._discovered_at < DISCOVERY_TTL:
            return self._discovery
        url = f"{self.config.issuer}/.well-known/openid-configuration"
        try:
            found = Discovery.model_validate(await self._get_json(url, "discovery document"))
        except ValidationError as exc:
            raise BadGateway(f"the provider's discovery document is incomplete: {exc}") from exc
        if found.issuer.rstrip("/") != self.config.issuer:
            raise BadGateway(
                f"the provider calls itself {found.issuer!r}, not the configured "
                f"--oidc-issuer {self.config.issuer!r}"
            )
        self._discovery, self._discovered_at = found, time.monotonic()
        return found

    async def _key_set(self, refresh: bool) -> KeySet:
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        async with self._lock:
            stale = time.monotonic() - self._keys_read_at >= self.config.jwks_refresh_seconds
            if self._keys is None or (refresh and stale):
                found = await self.discovery()
                data = await self._get_json(found.jwks_uri, "key set (JWKS)")
                try:
                    self._keys = KeySet.import_key_set(data)
                except (JoseError, ValueError, TypeError) as exc:
                    raise BadGateway(f"the provider's key set is unusable: {exc}") from exc
                self._keys_read_at = time.monotonic()
            return self._keys

    async def authorize_url(self, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        found = await self.discovery()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.config.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(self.config.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in found.authorization_endpoint else "?"
        return f"{found.authorization_endpoint}{separator}{query}"

    async def _post_form(self, url: str, form: dict[str, str], what: str) -> httpx.Response:
        """POST to the provider as this client (secret by Basic or in the form, as it takes)."""
        import httpx  # loaded by __init__

        found = await self.discovery()
        form = {**form, "client_id": self.config.client_id}
        secret = self.config.client_secret
        try:
            if secret is None:
                return await self._http.post(url, data=form)
            methods = found.token_endpoint_auth_methods_supported
            if "client_secret_basic" in methods or "client_secret_post" not in methods:
                auth = httpx.BasicAuth(self.config.client_id, secret)
                return await self._http.post(url, data=form, auth=auth)
            return await self._http.post(url, data={**form, "client_secret": secret})
        except httpx.HTTPError as exc:
            raise BadGateway(f"the sign-in provider is unreachable ({what}): {exc}") from exc

    async def exchange_code(self, code: str, redirect_uri: str, verifier: str) -> TokenResponse:
        """Trade an authorization code (and the PKCE verifier) for the provider's tokens."""
        found = await self.discovery()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        response = await self._post_form(found.token_endpoint, form, "token")
        if response.status_code != 200:
            raise Unauthorized(
                f"the sign-in provider refused the authorization code ({response.status_code}: "
                f"{response.text[:200]})"
            )
        return _tokens(response)

    async def start_device(self) -> DeviceStart:
        """RFC 8628: a device code for this client, and the user code to type in."""
        found = await self.discovery()
        if not found.device_authorization_endpoint:
            raise NotFound(
                "the sign-in provider does not offer device sign-in: use the browser "
                "('edgefleet login --sso', or --paste)"
            )
        form = {"scope": " ".join(self.config.scopes)}
        response = await self._post_form(found.device_authorization_endpoint, form, "device")
        if response.status_code != 200:
            raise BadGateway(
                f"the sign-in provider refused device sign-in ({response.status_code})"
            )
        try:
            return DeviceStart.model_validate_json(response.content)
        except ValidationError as exc:
            raise BadGateway("the sign-in provider's device answer is incomplete") from exc

    async def poll_device(self, device_code: str) -> TokenResponse | str:
        """The tokens once the user approved, else ``authorization_pending`` or
        ``slow_down``; :class:`Unauthorized` when denied or expired."""
        found = await self.discovery()
        form = {"grant_type": DEVICE_GRANT, "device_code": device_code}
        response = await self._post_form(found.token_endpoint, form, "token")
        if response.status_code == 200:
            return _tokens(response)
        try:
            error = str(response.json().get("error", ""))
        except (ValueError, AttributeError):
            error = ""
        if error in ("authorization_pending", "slow_down"):
            return error
        raise Unauthorized(
            f"the sign-in provider ended the device sign-in ({error or response.status_code})"
        )

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        found = await self.discovery()
        if not found.userinfo_endpoint:
            return {}
        data = await self._get_json(
            found.userinfo_endpoint, "userinfo", headers={"Authorization": f"Bearer {access_token}"}
        )
        return data if isinstance(data, dict) else {}

    # -- the check ------------------------------------------------------------------------

    async def verify_id_token(self, id_token: str, nonce: str | None) -> Identity:
        """The identity in ``id_token``, or :class:`Unauthorized` saying which check failed.

        ``nonce``: the sign-in's; None only for a device sign-in, where the token
        comes straight from the token endpoint for a device code we asked for."""
        from joserfc.errors import (
            BadSignatureError,
            ExpiredTokenError,
            InvalidClaimError,
            InvalidKeyIdError,
            JoseError,
            MissingClaimError,
        )
        from joserfc.jwt import JWTClaimsRegistry

        found = await self.discovery()
        algorithms = [a for a in found.id_token_signing_alg_values_supported if a in ASYMMETRIC]
        if not algorithms:
            raise BadGateway("the provider signs ID tokens with no asymmetric algorithm")
        keys = await self._key_set(refresh=False)
        try:
            token = _decode(id_token, keys, algorithms)
        except (InvalidKeyIdError, BadSignatureError) as exc:
            # The provider may have rotated its keys (a new kid, or no kid and a new
            # key): read them again, at most every --oidc-jwks-refresh-seconds.
            fresh = await self._key_set(refresh=True)
            if fresh is keys:
                raise Unauthorized("the ID token's signature is not the provider's") from exc
            try:
                token = _decode(id_token, fresh, algorithms)
            except (InvalidKeyIdError, BadSignatureError) as again:
                raise Unauthorized("the ID token's signature is not the provider's") from again
        claims = dict(token.claims)
        registry = JWTClaimsRegistry(
            leeway=self.config.leeway_seconds,
            iss={"essential": True, "value": found.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.config.client_id},
            exp={"essential": True},
            iat={"essential": True},
        )
        if nonce is not None:
            registry.options["nonce"] = {"essential": True, "value": nonce}
        try:
            registry.validate(claims)
        except ExpiredTokenError as exc:
            raise Unauthorized("the ID token has expired") from exc
        except (MissingClaimError, InvalidClaimError) as exc:
            raise Unauthorized(f"the ID token was refused: {_claim_problem(exc)}") from exc
        except JoseError as exc:
            raise Unauthorized(f"the ID token was refused: {exc}") from exc
        audience = claims["aud"]
        several = isinstance(audience, list) and len(audience) > 1
        if several and claims.get("azp") != self.config.client_id:
            raise Unauthorized("the ID token was refused: it was issued to another client (azp)")
        return Identity(issuer=found.issuer, subject=str(claims["sub"]), claims=claims)


def _tokens(response: httpx.Response) -> TokenResponse:
    try:
        return TokenResponse.model_validate_json(response.content)
    except ValidationError as exc:
        raise BadGateway("the sign-in provider's token answer has no id_token") from exc


def _decode(id_token: str, keys: KeySet, algorithms: list[str]) -> jwt.Token:
    """Check the signature; key-choice errors pass through for a retry with fresh keys."""
    from joserfc import jwt
    from joserfc.errors import BadSignatureError, InvalidKeyIdError, JoseError

    try:
        return jwt.decode(id_token, keys, algorithms=algorithms)
    except (InvalidKeyIdError, BadSignatureError):
        raise
    except JoseError as exc:
        raise Unauthorized(f"the ID token is malformed or wrongly signed: {exc}") from exc
    except ValueError as exc:
        raise Unauthorized("the ID token is malformed") from exc


PROBLEMS = {
    "iss": "it comes from another issuer",
    "aud": "it was issued to another client (audience)",
    "nonce": "its nonce is not this sign-in's (a replayed token?)",
    "iat": "it was issued in the future",
    "sub": "it names no subject",
    "exp": "it has no valid expiry",
}


def _claim_problem(exc: MissingClaimError | InvalidClaimError) -> str:
    claim = exc.claim.split(",")[0]
    return PROBLEMS.get(claim, f"claim {exc.claim!r} is missing or wrong")
