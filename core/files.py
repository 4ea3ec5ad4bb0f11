"""Output files and folders: checked before any work, written under a temporary name, renamed
when complete, so a failed or interrupted command leaves nothing that looks finished."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .errors import UsageError


def _nearest_existing(p: Path) -> Path:
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe(folder: Path, shown: Path, what: str) -> None:
    """Create and remove a file in `folder` (the real test: permissions, read-only mounts, /proc)."""
    folder = folder.absolute()
    if not folder.is_dir():
        raise UsageError(f"cannot write {what} {shown}: {folder} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".hilkit-probe-")
    except OSError as e:
        raise UsageError(f"cannot write {what} {shown}: {folder} is not writable ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(tmp)


def check_output_file(path, what: str = "output") -> Path:
    """Raise UsageError (one line naming the path) unless `path` can be written as a file."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"cannot write {what} {p}: it is a folder")
    _probe(_nearest_existing(p.parent), p, what)
    return p


def check_output_dir(path, what: str = "output folder") -> Path:
    """Raise UsageError unless `path` can be made (or replaced) as a folder."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"cannot write {what} {p}: it exists and is not a folder")
    _probe(_nearest_existing(p.parent), p, what)  # the folder is made beside it, then renamed
    return p


def write_atomic(path, data: bytes | str) -> Path:
    """Write `data` to a temporary file beside `path`, then rename it over `path`."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a fresh temporary folder beside `path`; when the block ends normally it replaces
    `path` (an older folder there is removed), otherwise it is deleted."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        yield tmp
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".old"))
            os.replace(final, old / "x")
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
