"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A reader (or a resumed run) therefore sees either the old file or the new one,
never a half-written one, even if the process is killed mid-write. The folder is
fsynced after the rename too, so that the new name itself survives a power cut.

Temporary names all start with a dot and end in ``.tmp`` (files) or carry ``.tmp-`` /
``.old-`` (folders): :func:`remove_stale_temporaries` finds what a killed writer left.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any


def fsync_directory(path: str | Path) -> None:
    """fsync a folder, so that names created or renamed in it are on disk (no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems (and Windows) cannot fsync a folder
        pass
    finally:
        os.close(fd)


def fsync_file(path: str | Path) -> None:
    """fsync a file written by someone else's writer (e.g. safetensors' ``save_file``)."""
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def replace_directory(staging: str | Path, target: str | Path) -> None:
    """Move a fully written ``staging`` folder to ``target``, replacing any folder there.

    ``os.replace`` cannot overwrite a non-empty folder, so an existing ``target`` is first
    renamed aside, then removed: a reader sees the old folder or the new one, never a
    half-written one (at worst, for an instant, none).
    """
    staging, target = Path(staging), Path(target)
    if not target.exists():
        os.replace(staging, target)
        fsync_directory(target.parent)
        return
    retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex}"
    os.replace(target, retired)
    os.replace(staging, target)
    fsync_directory(target.parent)
    shutil.rmtree(retired, ignore_errors=True)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove what interrupted atomic writes left directly in ``folder``; return what was removed.

    Matches only this module's and the checkpoints' temporary names (``.NAME.*.tmp`` files,
    ``.tmp-*`` and ``.*.old-*`` folders), so nothing a user saved is touched. Call it only
    when no other writer uses ``folder`` (a run starting or resuming).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        name = entry.name
        stale_file = name.startswith(".") and name.endswith(".tmp") and entry.is_file()
        stale_folder = entry.is_dir() and (name.startswith(".tmp-") or (name.startswith(".") and ".old-" in name))
        if stale_file:
            entry.unlink(missing_ok=True)
        elif stale_folder:
            shutil.rmtree(entry, ignore_errors=True)
        else:
            continue
        removed.append(entry)
    return removed
