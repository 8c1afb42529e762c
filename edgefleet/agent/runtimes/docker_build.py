"""``docker build`` through the engine's API (Docker or Podman's compatible one).

The engine reports a failed step inside the progress stream of a 200
response, like a pull; the last lines of the log go into the error so the
job's status says what broke.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path

from edgefleet.agent.engine.errors import APIError, EngineError
from edgefleet.agent.engine.images import Images
from edgefleet.agent.errors import RuntimeFailure
from edgefleet.spec.model import Build

log = logging.getLogger(__name__)
TAIL_LINES = 12
_STEP = re.compile(r"^(STEP|Step) \d+/\d+")


def build_image(
    images: Images, context: Path, tag: str, build: Build, step: Callable[[str], None]
) -> list[str]:
    """Build the plain tar ``context`` as ``tag``; the log's last lines. Blocking;
    ``step`` gets each build step (``STEP 2/4: COPY …``) as it starts."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    error: str | None = None
    try:
        with context.open("rb") as body:
            for item in images.build(
                body,
                tag=tag,
                dockerfile=build.dockerfile,
                buildargs=build.args or None,
                target=build.target,
            ):
                if not isinstance(item, dict):
                    continue
                if item.get("error") or item.get("errorDetail"):
                    detail = item.get("errorDetail") or {}
                    error = str(item.get("error") or detail.get("message") or item)
                text = str(item.get("stream") or "").strip()
                if text:
                    if _STEP.match(text):
                        step(text)
                    tail.append(text)
                    log.info("build %s: %s", tag, text)
    except APIError as exc:
        error = exc.explanation
    except (EngineError, OSError) as exc:
        error = str(exc)
    if error is not None:
        last = " | ".join(tail)
        raise RuntimeFailure(
            f"building image {tag} failed: {error.strip()}" + (f" (log: {last})" if last else "")
        )
    return list(tail)
