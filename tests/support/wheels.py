"""Agent wheels built from this checkout, for the over-the-air upgrade tests.

The tree is copied (so the build never writes into the shared checkout), its
``__version__`` bumped, optionally broken, and built with ``pip wheel`` (the
build backend from PyPI through pip's build isolation, as a user's would be).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BROKEN_MAIN = 'import sys\nsys.exit("this release is broken on purpose: it exits at start")\n'


def build_wheel(workdir: Path, version: str, *, broken: bool = False) -> Path:
    """Build ``edgefleet-<version>`` into ``workdir/out``; ``broken``: its agent exits at start."""
    src = workdir / f"src-{version}"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "edgefleet", src / "edgefleet", ignore=shutil.ignore_patterns("__pycache__")
    )
    init = src / "edgefleet" / "__init__.py"
    lines = [
        f'__version__ = "{version}"' if line.startswith("__version__") else line
        for line in init.read_text().splitlines()
    ]
    init.write_text("\n".join(lines) + "\n")
    if broken:
        main = src / "edgefleet" / "__main__.py"
        main.write_text(BROKEN_MAIN + main.read_text())
    out = workdir / "out"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob(f"edgefleet-{version}-*.whl")
    return wheel
