"""``oidc-provider-mock`` with device authorization (RFC 8628) added, run as a
process: ``python tests/support/oidc_device.py --port P``.

The mock (a maintained provider built for tests, on Authlib) has no device
flow. This adds one the way a provider does it, on the mock's own app, users
and signing key: ``POST /oauth2/device`` hands out a device code and a user
code, ``/device`` is the page where the user types the user code and signs in
(the subject, as on the mock's authorize form), and the token endpoint answers
``authorization_pending`` until then, then an access token and an RS256 ID
token signed with the key the mock publishes at ``/jwks``. Discovery gains
``device_authorization_endpoint``. The server under test checks these tokens
exactly as any others.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from typing import Any

import flask
import oidc_provider_mock
import werkzeug.serving
from authlib import jose
from markupsafe import escape
from oidc_provider_mock._app import _user_claims_for_scope
from oidc_provider_mock._storage import User

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

app = oidc_provider_mock.app()
pending: dict[str, dict[str, Any]] = {}  # device code -> client, scope, user code, subject


def _base() -> str:
    return flask.request.host_url.rstrip("/")


def _client_id() -> str:
    auth = flask.request.authorization
    return (auth.username if auth and auth.username else None) or flask.request.form.get(
        "client_id", ""
    )


@app.before_request
def device_flow() -> Any:
    request = flask.request
    if request.path == "/oauth2/device" and request.method == "POST":
        device_code, user_code = secrets.token_urlsafe(32), secrets.token_hex(4).upper()
        pending[device_code] = {
            "client_id": _client_id(),
            "scope": request.form.get("scope", "openid"),
            "user_code": user_code,
            "sub": None,
            "expires": time.time() + 600,
        }
        return flask.jsonify(
            device_code=device_code,
            user_code=user_code,
            verification_uri=f"{_base()}/device",
            verification_uri_complete=f"{_base()}/device?user_code={user_code}",
            expires_in=600,
            interval=1,
        )
    if request.path == "/device":
        if request.method == "GET":
            code = escape(request.args.get("user_code", ""))
            return (
                "<form method=post><input name=user_code value='" + str(code) + "'>"
                "<input name=sub placeholder=sub><button type=submit>Authorize</button></form>"
            )
        for entry in pending.values():
            if entry["user_code"] == request.form.get("user_code") and request.form.get("sub"):
                entry["sub"] = request.form["sub"]
                return "Device authorized: return to your terminal."
        return "Unknown code", 400
    if request.path == "/oauth2/token" and request.form.get("grant_type") == DEVICE_GRANT:
        entry = pending.get(request.form.get("device_code", ""))
        if entry is None or entry["client_id"] != _client_id():
            return flask.jsonify(error="invalid_grant"), 400
        if entry["expires"] < time.time():
            return flask.jsonify(error="expired_token"), 400
        if entry["sub"] is None:
            return flask.jsonify(error="authorization_pending"), 400
        del pending[request.form["device_code"]]
        storage = flask.g.oidc_provider_mock_storage
        user = storage.get_user(entry["sub"]) or User(sub=entry["sub"], claims={})
        now = int(time.time())
        claims = {
            **_user_claims_for_scope(user, entry["scope"]),
            "iss": _base(),
            "aud": entry["client_id"],
            "iat": now,
            "exp": now + 3600,
        }
        id_token = jose.jwt.encode({"alg": "RS256"}, claims, storage.jwk).decode()
        return flask.jsonify(
            access_token=secrets.token_urlsafe(24),
            token_type="Bearer",
            expires_in=3600,
            id_token=id_token,
        )
    return None


@app.after_request
def announce_device_flow(response: flask.Response) -> flask.Response:
    if flask.request.path == "/.well-known/openid-configuration" and response.status_code == 200:
        data = json.loads(response.get_data())
        data["device_authorization_endpoint"] = f"{_base()}/oauth2/device"
        data["grant_types_supported"] = [*data.get("grant_types_supported", []), DEVICE_GRANT]
        response.set_data(json.dumps(data))
    return response


if __name__ == "__main__":
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # plain http on loopback, as the mock's own CLI
    port = int(sys.argv[sys.argv.index("--port") + 1])
    werkzeug.serving.run_simple("127.0.0.1", port, app, threaded=True)
