"""The data root's layout and atomic file writes.

Everything the pipeline writes lives under one data root on the shared filesystem::

    warc/<date>/<site>-<crawl>.warc.gz    every request/response of the crawl    (scrape)
    warc/<date>/<site>-<crawl>.images.jsonl  which image each lot page showed    (scrape)
    warc/<date>/<site>-<crawl>.failures.jsonl  URLs the crawl could not fetch, why (scrape)
    images/sha256/<ab>/<digest>           images, content-addressed, deduplicated (scrape)
    processed/<crawl>/<site>.jsonl        clean lots of one site and crawl       (process)
    processed/<crawl>/<site>.sellers.jsonl  their sellers' profiles              (process)
    quarantine/<crawl>/<site>.jsonl       lots held back by a layout check       (process)
    quarantine/<crawl>/<site>.sellers.jsonl  seller profiles that could not be read (process)
    auction.sqlite                        the database, loaded by one writer      (load)
    archive/<date>/                       the day's BagIt bag for researchers     (archive)
    logs/slurm/                           Slurm job logs and rendered job scripts
    .dask-tls/                            a running flow's TLS certificates (owner only)
    .task-results/<flow run id>/          a running flow's task results (flows/held.py)

``<crawl>`` is the crawl's id (``tasks/crawlid.py``): the day (``2026-03-14``) for a day's one
crawl, the day and UTC time (``2026-03-14T0600Z``) for the marketplaces' crawls every six hours.

Files and directories appear under their final name only when complete (temp name, fsync,
rename), so a job killed at walltime never leaves a truncated file that looks finished.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from infra.atomic import fsync_directory, fsync_tree, write_atomic
from tasks.crawlid import CrawlId, crawl_of

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_data_root() -> Path:
    """``$AUCTION_PIPELINE_DATA_ROOT``, or ``data/`` in this checkout."""
    return Path(os.environ.get("AUCTION_PIPELINE_DATA_ROOT") or REPO_ROOT / "data")


# The data root's own mode: owner everything, group read and traverse, others nothing. On a
# shared cluster every other user can reach the login and compute nodes; a directory others
# cannot traverse keeps everything below it private, whatever the files' own modes.
DATA_ROOT_MODE = 0o750


@dataclass(frozen=True)
class DataRoot:
    """Paths inside one data root."""

    path: Path

    def prepare(self) -> str | None:
        """Create the data root group-private (``DATA_ROOT_MODE``) if it does not exist.

        An existing root is left as it is (its owner chose its mode); if other users can
        reach it, the warning to show is returned, naming the fix.
        """
        try:
            self.path.mkdir(mode=DATA_ROOT_MODE, parents=True)
        except FileExistsError:
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o007:
                return (
                    f"data root {self.path} is open to other users (mode {mode:o}); make it "
                    f"group-private with: chmod o-rwx {self.path}"
                )
        return None

    def warc_dir(self, day: date | CrawlId) -> Path:
        """The page backups of ``day`` (every crawl of the day)."""
        return self.path / "warc" / crawl_of(day).day.isoformat()

    def warc_file(self, crawl: date | CrawlId, site: str) -> Path:
        """One site's WARC file of ``crawl`` (a date: the day's crawl)."""
        return self.warc_dir(crawl) / f"{site}-{crawl_of(crawl).id}.warc.gz"

    def image_manifest(self, crawl: date | CrawlId, site: str) -> Path:
        """Which images one site's lot pages showed on ``crawl`` (JSON lines)."""
        return self.warc_dir(crawl) / f"{site}-{crawl_of(crawl).id}.images.jsonl"

    def failures_file(self, crawl: date | CrawlId, site: str) -> Path:
        """The URLs one site's ``crawl`` could not fetch, with the reason (JSON lines)."""
        return self.warc_dir(crawl) / f"{site}-{crawl_of(crawl).id}.failures.jsonl"

    def quarantine_file(self, crawl: date | CrawlId, site: str) -> Path:
        """Lots of one site and crawl held back by a layout check (JSON lines)."""
        return self.path / "quarantine" / crawl_of(crawl).id / f"{site}.jsonl"

    def image_path(self, digest: str) -> Path:
        """Content-addressed location of an image with sha256 ``digest``."""
        return self.path / "images" / "sha256" / digest[:2] / digest

    def sellers_file(self, crawl: date | CrawlId, site: str) -> Path:
        """The clean seller profiles of ``site`` read on ``crawl`` (beside its lots)."""
        return sellers_beside(self.processed_file(crawl, site))

    def held_sellers_file(self, crawl: date | CrawlId, site: str) -> Path:
        """The seller profiles of ``site`` on ``crawl`` whose fields could not be read."""
        return self.path / "quarantine" / crawl_of(crawl).id / f"{site}.sellers.jsonl"

    def processed_file(self, crawl: date | CrawlId, site: str) -> Path:
        """One site's clean lots of ``crawl`` (JSON lines)."""
        return self.path / "processed" / crawl_of(crawl).id / f"{site}.jsonl"

    def crawls_of(self, day: date) -> dict[CrawlId, list[str]]:
        """The crawls of ``day`` with a complete WARC file, in time order (the day's own
        crawl first), each with its sites."""
        found: dict[CrawlId, list[str]] = {}
        directory = self.warc_dir(day)
        if not directory.is_dir():
            return {}
        for path in sorted(directory.glob("*.warc.gz")):
            parts = backup_name(path.name)
            if parts is not None and parts[2] == "warc.gz" and parts[1].day == day:
                found.setdefault(parts[1], []).append(parts[0])
        return dict(sorted(found.items(), key=lambda item: item[0].moment))

    def archive_dir(self, day: date) -> Path:
        """The day's archive bag."""
        return self.path / "archive" / day.isoformat()

    def archived_copy(self, day: date, backup: Path) -> Path:
        """Where the day's bag keeps its copy of ``backup`` (a WARC file or images manifest
        of ``warc/<day>/``)."""
        folder = "warc" if backup.name.endswith(".warc.gz") else "images"
        return self.archive_dir(day) / "data" / folder / backup.name

    @property
    def slurm_logs(self) -> Path:
        """Slurm job logs and rendered job scripts."""
        return self.path / "logs" / "slurm"

    def task_results(self, flow_run_id: str) -> Path:
        """Where a flow run's task results are kept while it runs (``flows/held.py``)."""
        return self.path / ".task-results" / flow_run_id

    def dask_tls(self) -> Path:
        """The owner-only directory (0700, created if needed) where a Slurm run's Dask
        scheduler leaves the TLS certificate and key its worker jobs read: it must be on the
        filesystem the compute nodes share, and nobody else may read it."""
        tls = self.path / ".dask-tls"
        tls.mkdir(mode=0o700, parents=True, exist_ok=True)
        tls.chmod(0o700)  # whatever the umask, or an earlier mode
        return tls


_BACKUP_NAME = re.compile(r"(.+)-(\d{4}-\d{2}-\d{2}(?:T\d{4}Z)?)\.([a-z.0-9]+)")


def backup_name(name: str) -> tuple[str, CrawlId, str] | None:
    """(site, crawl, suffix) of a file name under ``warc/<day>/`` such as
    ``ebay-2026-03-14T0600Z.warc.gz`` (suffix ``warc.gz``); None for any other name."""
    match = _BACKUP_NAME.fullmatch(name)
    if match is None:
        return None
    try:
        return match[1], CrawlId.parse(match[2]), match[3]
    except ValueError:
        return None


def sellers_beside(lots_file: Path) -> Path:
    """The sellers file that goes with a processed lots file (``<site>.sellers.jsonl``)."""
    return lots_file.with_name(f"{lots_file.stem}.sellers.jsonl")


def store_content_addressed(root: DataRoot, data: bytes) -> tuple[str, bool]:
    """Store ``data`` once under its sha256; return (digest, whether it was new)."""
    digest = hashlib.sha256(data).hexdigest()
    path = root.image_path(digest)
    if path.exists():
        return digest, False
    write_atomic(path, data)
    return digest, True


def _siblings(final: Path, kind: str) -> list[Path]:
    return sorted(final.parent.glob(f".{final.name}.{kind}-*"), key=lambda p: p.stat().st_mtime)


def recover_directory(final: Path) -> None:
    """Repair what a kill during :func:`staged_directory` can leave behind.

    Between its two renames ``final`` is briefly absent, with the earlier version parked as
    ``.<name>.old-*``: put that back. Unfinished ``.partial-*`` stages are removed. Only one
    writer works on a given directory (one task per site and day), so nothing else is using
    them.
    """
    if not final.parent.is_dir():
        return
    olds = _siblings(final, "old")
    if not final.exists() and olds:
        os.replace(olds.pop(), final)
    for leftover in olds + _siblings(final, "partial"):
        shutil.rmtree(leftover)


@contextmanager
def staged_directory(final: Path, keep_previous_as: Path | None = None) -> Iterator[Path]:
    """Yield a hidden staging directory that replaces ``final`` only if the block succeeds.

    The stage is fsynced before it is renamed into place, and an earlier complete ``final``
    stays in place until then, so readers see the old version or the new one, never a mix.
    The earlier version is then deleted, or, with ``keep_previous_as``, moved there (for a
    version that holds the last copy of something).
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(final)
    stage = final.with_name(f".{final.name}.partial-{uuid.uuid4().hex}")
    stage.mkdir()
    try:
        yield stage
        fsync_tree(stage)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if keep_previous_as is not None and final.exists():
        # Straight to where it is kept: a kill between the two renames leaves it there, not
        # as a leftover that the next attempt would delete.
        keep_previous_as.parent.mkdir(parents=True, exist_ok=True)
        os.replace(final, keep_previous_as)
        fsync_directory(keep_previous_as.parent)
    old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex}")
    if final.exists():
        os.replace(final, old)
    os.replace(stage, final)
    fsync_directory(final.parent)
    if old.exists():
        shutil.rmtree(old)
