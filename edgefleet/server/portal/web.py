"""What every portal page shares: the signed-in viewer, CSRF-checked forms,
templates, and one route class that turns errors into pages.

Errors, drawn where they become responses (:class:`PortalRoute`)::

    LoginRequired            -> 303 to /login?next=<here>; htmx requests get
                                HX-Redirect, other /portal/* requests 401
    ApiError (server.errors) -> the error page with the error's status
    RequestValidationError   -> the error page, 422

A handler that wants to show an error next to a form catches the ApiError
itself and renders the form again, with status 200 (as Django does): the page
is a good answer to "show me my form again", and browsers log every 4xx
document as a console error.
"""

from __future__ import annotations

import base64
import functools
import inspect
import json
import math
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile

from edgefleet.server.auth import secrets
from edgefleet.server.auth import service as auth_service
from edgefleet.server.auth.caller import Caller
from edgefleet.server.auth.roles import Permission
from edgefleet.server.deps import CSRF_HEADER, Db, session_secret
from edgefleet.server.errors import ApiError, Forbidden, Invalid, validation_message

if TYPE_CHECKING:
    import jinja2
    from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
CSRF_FIELD = "csrf"

# Pages load only our own files: no inline script, no third-party origin.
# 'unsafe-inline' styles: xterm.js and htmx's swap transitions set style attributes.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'self'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class LoginRequired(Exception):
    """No valid portal session: the browser is sent to sign in."""


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of one request, with the session the cookie holds."""

    caller: Caller
    session: str

    @property
    def csrf(self) -> str:
        return secrets.csrf_token(self.session)

    @property
    def name(self) -> str:
        return self.caller.name

    def can(self, project_pk: int, permission: Permission | str) -> bool:
        return self.caller.can(project_pk, Permission(permission))

    def can_any(self, permission: Permission | str) -> bool:
        """Whether some project allows it (to show or hide a create form)."""
        wanted = Permission(permission)
        return self.caller.is_admin or any(self.caller.can(pk, wanted) for pk in self.caller.roles)


async def get_viewer(request: Request, db: Db) -> Viewer:
    secret = session_secret(request)
    if secret:
        caller = await auth_service.authenticate_session(db, secret)
        if caller is not None:
            viewer = Viewer(caller, secret)
            request.state.viewer = viewer
            return viewer
    raise LoginRequired()


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def checked_form(request: Request, viewer: ViewerDep) -> FormData:
    """The posted form, once its CSRF token (hidden field or htmx header) matches
    the session's. Every state-changing portal handler takes this."""
    form = await request.form()
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    if not isinstance(sent, str) or not secrets.same(sent, viewer.csrf):
        raise Forbidden("this form is stale or came from another site: reload the page and retry")
    return form


CheckedForm = Annotated[FormData, Depends(checked_form)]


def field(form: FormData, name: str, default: str = "") -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else default


async def text_or_upload(form: FormData, text_name: str, file_name: str) -> str:
    """A pasted text, or the uploaded file's content when one was chosen."""
    upload = form.get(file_name)
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read()
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise Invalid("the uploaded file is not UTF-8 text", field=file_name) from exc
    value = form.get(text_name)
    return value if isinstance(value, str) else ""


M = TypeVar("M", bound=BaseModel)
D = TypeVar("D")


def query_of(shape: type[D]) -> Callable[..., Coroutine[Any, Any, D]]:
    """A dependency building ``shape`` (a dataclass of query parameters) from the
    query string. ``Depends()`` on the class itself would do the same on
    FastAPI's thread pool: a class is not a coroutine, so every page view would
    hop threads just to fill in a few strings."""

    async def build(**fields: Any) -> D:
        return shape(**fields)

    build.__signature__ = inspect.signature(shape, eval_str=True)  # type: ignore[attr-defined]
    build.__name__ = build.__qualname__ = f"query_of_{shape.__name__}"
    return build


def build(model: type[M], **data: Any) -> M:
    """An API input model from form values; its validation errors become one Invalid."""
    try:
        return model(**data)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [
            {**e, "msg": str(e.get("msg", "")).removeprefix("Value error, ")} for e in exc.errors()
        ]
        loc = exc.errors()[0]["loc"] if errors else ()
        raise Invalid(validation_message(errors), field=str(loc[0]) if loc else None) from None


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``key=value`` lines (blank lines and ``#`` comments ignored)."""
    pairs: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not eq or not key.strip():
            raise Invalid(f"{what}, line {number}: expected key=value, got {line!r}", field=what)
        pairs[key.strip()] = value.strip()
    return pairs


def format_pairs(pairs: Mapping[str, Any]) -> str:
    return "\n".join(f"{k}={v}" for k, v in pairs.items())


def safe_next(target: str | None) -> str:
    """Only paths on this site: never ``//host`` or ``https://…`` (open redirects)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


ONCE_COOKIE = "edgefleet_once"


def show_once(url: str, payload: dict[str, Any], secure: bool) -> Response:
    """Redirect to ``url`` carrying a just-created secret for one display.

    Post/redirect/get, so reloading the page never creates a second key; the
    secret rides in an HTTP-only, SameSite=Strict cookie scoped to that page,
    which the page reads (:func:`read_once`) and deletes (:func:`forget_once`)
    on the very next request.
    """
    response = redirect(url)
    value = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    response.set_cookie(
        ONCE_COOKIE, value, max_age=120, httponly=True, samesite="strict", secure=secure, path=url
    )
    return response


def read_once(request: Request) -> dict[str, Any] | None:
    """The secret :func:`show_once` sent along, if any (call :func:`forget_once` too)."""
    raw = request.cookies.get(ONCE_COOKIE)
    if not raw:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(raw.encode()))
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def forget_once(response: Response, url: str) -> Response:
    response.delete_cookie(ONCE_COOKIE, path=url)
    return response


# --- templates ------------------------------------------------------------------------------


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def ago(value: datetime | str | None) -> str:
    """ "12 s ago", "5 min ago", "3 h ago", "4 d ago"; portal.js keeps it ticking."""
    if value is None:
        return "never"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    seconds = max(0, (datetime.now(UTC) - _aware(value)).total_seconds())
    if seconds < 60:
        return f"{int(seconds)} s ago"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} d ago"


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    return _aware(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


def when(value: datetime | None) -> str:
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "—"


def size(value: int | None) -> str:
    if not value:
        return "—"
    units = ["B", "KiB", "MiB", "GiB", "TiB"]
    power = min(int(math.log(value, 1024)), len(units) - 1)
    return f"{value / 1024**power:.1f} {units[power]}".replace(".0 ", " ")


TONES = {
    "running": "ok",
    "online": "ok",
    "ready": "ok",
    "completed": "ok",
    "healthy": "ok",
    "active": "ok",
    "pending": "wait",
    "deploying": "wait",
    "pulling": "wait",
    "starting": "wait",
    "not ready": "wait",
    "failed": "bad",
    "offline": "bad",
    "unhealthy": "bad",
    "revoked": "bad",
}


def tone(state: str | None) -> str:
    return TONES.get(state or "", "muted")


def _environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(ago=ago, iso=iso, when=when, size=size, tone=tone, quote=quote)
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True)
    return env


@functools.cache
def templates() -> Jinja2Templates:
    """The page templates, read with the first page shown: a server whose
    portal nobody opens does not load Jinja2 (~2 MB resident, issue 16)."""
    from fastapi.templating import Jinja2Templates

    return Jinja2Templates(env=_environment())


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    values: dict[str, Any] = {
        "viewer": viewer,
        "csrf": viewer.csrf if viewer else "",
        "path": request.url.path,
    }
    values.update(context or {})
    return templates().TemplateResponse(request, name, values, status_code=status)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def login_redirect(request: Request) -> Response:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.headers.get("hx-request"):
        current = urlsplit(request.headers.get("hx-current-url", "/"))
        here = current.path + (f"?{current.query}" if current.query else "")
        return Response(
            status_code=200, headers={"HX-Redirect": f"/login?next={quote(here, safe='')}"}
        )
    if request.url.path.startswith("/portal/"):
        return Response("sign in first", status_code=401)
    return redirect(f"/login?next={quote(here, safe='')}")


class PortalRoute(APIRoute):
    """Portal pages speak HTML: a missing session redirects to sign-in, an API
    error becomes the error page, and every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                response = await handler(request)
            except LoginRequired:
                response = login_redirect(request)
            except ApiError as exc:
                response = error_page(request, exc.status, exc.message)
            except RequestValidationError as exc:
                errors = [dict(e) for e in exc.errors()]
                response = error_page(request, 422, validation_message(errors))
            response.headers.update(SECURITY_HEADERS)
            return response

        return run


def page_router() -> APIRouter:
    """The router every portal module starts with: its pages speak HTML
    (:class:`PortalRoute`) and stay out of the API's OpenAPI document."""
    return APIRouter(route_class=PortalRoute, include_in_schema=False)


def refused(exc: ApiError) -> None:
    """Re-raise a refusal (403: the caller's role may not) so it becomes the error
    page with its status; a form's own mistakes (422, 409, a name that does not
    exist) re-render the form with the message."""
    if exc.status == 403:
        raise exc


def error_page(request: Request, status: int, message: str) -> Response:
    titles = {401: "Sign in needed", 403: "Not allowed", 404: "Not found", 409: "Conflict"}
    context = {
        "status": status,
        "title": titles.get(status, "Something went wrong"),
        "message": message,
    }
    if request.headers.get("hx-request"):
        return render(request, "fragments/error.html", context, status=status)
    return render(request, "error.html", context, status=status)
