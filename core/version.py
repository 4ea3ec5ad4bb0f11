"""hilkit's version, kept in one place: pyproject.toml (read from the installed metadata, or from
the checkout's pyproject.toml when hilkit runs from a source tree that was never installed). The
code generator writes it into model.h, so the firmware reports the version that generated it."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path


def _version() -> str:
    try:
        return metadata.version("hilkit")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        m = re.search(r'^version\s*=\s*"([^"]+)"', pyproject.read_text(), re.M) if pyproject.is_file() else None
        return m.group(1) if m else "unknown"


VERSION = _version()
