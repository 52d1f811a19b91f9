"""Atomic file writes: a file appears under its final name only when complete and on disk.

A job killed at walltime (or a node lost) must never leave a truncated file that looks
finished: write to a temp name in the same directory, fsync, rename, fsync the directory.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO

# Linux's FICLONE ioctl (linux/fs.h): share the source's blocks copy-on-write (btrfs, XFS,
# bcachefs). A true copy where the filesystem cannot.
_FICLONE = 0x40049409


def fsync_directory(path: Path) -> None:
    """Make a rename or new entry in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and rename.

    With ``mode`` (e.g. 0o600 for a key) the file has that mode from its creation on,
    whatever the umask; otherwise the umask decides, as for ``open``.

    An OSError (a full disk: ENOSPC, a quota: EDQUOT) is raised again naming ``path``, with
    its errno (and so its subclass) kept for callers; ``path`` keeps its earlier content.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_and_rename(tmp, path, data, mode)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot write {path}: {exc.strerror}; its earlier version, if any, is unchanged",
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _write_and_rename(tmp: Path, path: Path, data: bytes, mode: int | None) -> None:
    """Write ``data`` to the new file ``tmp``, fsync it, rename it to ``path``, fsync the
    directory."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode)
    with open(fd, "wb") as handle:
        if mode is not None:
            os.fchmod(fd, mode)
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    fsync_directory(path.parent)


def fsync_tree(root: Path) -> None:
    """fsync every file and directory below ``root`` (before renaming the tree into place)."""
    for directory, _, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_directory(Path(directory))


def clone_into(source: BinaryIO, target: BinaryIO) -> None:
    """Copy ``source`` into the empty ``target``: a reflink where the filesystem has them
    (instant, no space used until one side changes), else a byte copy. Never a hard link:
    the two must stay separate inodes, so damage to one cannot reach the other."""
    try:
        fcntl.ioctl(target.fileno(), _FICLONE, source.fileno())
    except OSError:
        shutil.copyfileobj(source, target, length=1 << 20)


def copy_atomic(source: Path, target: Path) -> None:
    """Copy the file ``source`` to ``target`` as :func:`write_atomic` writes: a temp file in
    the target's directory, fsynced and renamed, so ``target`` is whole or absent. Only
    reads ``source``. The modification time is kept."""
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb") as src, open(tmp, "xb") as dst:
            clone_into(src, dst)
            dst.flush()
            os.fsync(dst.fileno())
        shutil.copystat(source, tmp)
        os.replace(tmp, target)
        fsync_directory(target.parent)
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot copy {source} to {target}: {exc.strerror}; {target} is unchanged"
        ) from exc
    finally:
        tmp.unlink(missing_ok=True)
