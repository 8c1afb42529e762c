"""Reading an uploaded wheel: the raw body (``application/octet-stream``, with
``?version=&sha256=``) or a multipart form (``file`` or ``wheel``, and
``version``/``sha256`` as fields or query). Either way the service sees one
stream of chunks and counts them against the size limit itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile

from edgefleet.server.errors import Invalid, PayloadTooLarge

CHUNK = 1 << 16
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields


@dataclass
class Wheel:
    version: str
    sha256: str
    chunks: AsyncIterator[bytes]
    length: int | None  # declared, when the client said (raw bodies only)


def _declared(request: Request) -> int | None:
    value = request.headers.get("content-length", "")
    return int(value) if value.isdigit() else None


async def _file_chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK):
        yield chunk


def _required(value: str | None, name: str) -> str:
    if not value:
        raise Invalid(f"{name} is required (a query parameter or a form field)", field=name)
    return value


async def read(request: Request, version: str | None, sha256: str | None, max_bytes: int) -> Wheel:
    """The wheel of this request; a form larger than the limit is refused before parsing."""
    length = _declared(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return Wheel(
            _required(version, "version"), _required(sha256, "sha256"), request.stream(), length
        )
    if length is not None and length > max_bytes + FORM_OVERHEAD:
        raise PayloadTooLarge(
            f"the upload is {length} bytes; the limit is {max_bytes} (--agent-release-max-bytes)"
        )
    form = await request.form(max_files=1, max_fields=8)
    upload = form.get("file") or form.get("wheel")
    if not isinstance(upload, UploadFile):
        raise Invalid("the form has no file field (file or wheel)", field="file")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return Wheel(
        _required(version or fields.get("version"), "version"),
        _required(sha256 or fields.get("sha256"), "sha256"),
        _file_chunks(upload),
        None,
    )
