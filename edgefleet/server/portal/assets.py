"""Where the portal's static files (CSS, scripts, icons) live: one name for the
package's mount and the pages that serve a file directly (the favicon), so no
page imports the portal package that imports every page."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).parent / "static"
