"""--database-url: what make_url refuses is one DatabaseUrlError naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefleet.server.db.engine import DatabaseUrlError, async_url


@pytest.mark.parametrize(
    "url",
    ["nonsense", "://x", "post gres://h/db", "postgresql://u:p@h:notaport/db"],
)
def test_a_url_make_url_refuses_is_a_database_url_error(url: str) -> None:
    with pytest.raises(DatabaseUrlError, match="--database-url is not a valid URL"):
        async_url(url, Path("."))


def test_urls_get_their_async_driver() -> None:
    assert async_url(None, Path("/d")) == "sqlite+aiosqlite:////d/edgefleet.db"
    assert async_url("postgres://u:p@h:5433/db", Path(".")).startswith(
        "postgresql+psycopg://u:p@h:5433/db"
    )
