"""The data root's layout and atomic file writes.

Everything the pipeline writes lives under one data root on the shared filesystem::

    raw/<date>/<site>/            pages as served + pages.jsonl index      (scrape)
    images/sha256/<ab>/<digest>   images, content-addressed, deduplicated  (scrape)
    processed/<date>/<site>.jsonl clean lots of one site and day           (process)
    auction.sqlite                the database, loaded by one writer only  (load)
    archive/<date>/               the day's BagIt bag for the researchers  (archive)
    logs/slurm/                   Slurm job logs and rendered job scripts

Files and directories appear under their final name only when complete (temp name, fsync,
rename), so a job killed at walltime never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class DataRoot:
    """Paths inside one data root."""

    path: Path

    def raw_dir(self, day: date, site: str) -> Path:
        """Where one site's pages for ``day`` are kept."""
        return self.path / "raw" / day.isoformat() / site

    def image_path(self, digest: str) -> Path:
        """Content-addressed location of an image with sha256 ``digest``."""
        return self.path / "images" / "sha256" / digest[:2] / digest

    def processed_file(self, day: date, site: str) -> Path:
        """One site's clean lots for ``day`` (JSON lines)."""
        return self.path / "processed" / day.isoformat() / f"{site}.jsonl"

    @property
    def database(self) -> Path:
        """The SQLite database file."""
        return self.path / "auction.sqlite"

    def archive_dir(self, day: date) -> Path:
        """The day's archive bag."""
        return self.path / "archive" / day.isoformat()

    @property
    def slurm_logs(self) -> Path:
        """Slurm job logs and rendered job scripts."""
        return self.path / "logs" / "slurm"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def store_content_addressed(root: DataRoot, data: bytes) -> tuple[str, bool]:
    """Store ``data`` once under its sha256; return (digest, whether it was new)."""
    digest = hashlib.sha256(data).hexdigest()
    path = root.image_path(digest)
    if path.exists():
        return digest, False
    write_atomic(path, data)
    return digest, True


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yield a hidden staging directory that replaces ``final`` only if the block succeeds.

    An earlier complete ``final`` stays in place until the new one is complete.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    stage = final.with_name(f".{final.name}.partial-{uuid.uuid4().hex}")
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    if final.exists():
        os.replace(final, old)
    os.replace(stage, final)
    shutil.rmtree(old, ignore_errors=True)
