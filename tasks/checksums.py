"""The sha256 of every complete page backup, recorded when it is written and checked on reading.

A WARC file is the only record of what a site served on a day: once the site has changed,
nothing can fetch it again. So the crawl records its digest beside it when the file is
complete (``<name>.warc.gz.sha256``, in ``sha256sum`` format, so ``sha256sum -c`` checks it by
hand too), and every reader — processing, the re-run that reuses a day, the archive, ``archive
verify`` — checks it first. A damaged file (a flipped bit, a truncated copy, an edit) is then
reported with the fix instead of being read, archived, or taken for a new version. Files from
before digests were recorded have no ``.sha256``; they are read as they are.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

from infra.atomic import write_atomic
from tasks.storage import DataRoot

SUFFIX = ".sha256"


class BackupDamaged(RuntimeError):
    """A page backup no longer matches the digest recorded when it was written."""


def file_digest(path: Path) -> str:
    """The sha256 of the file at ``path``, read in chunks (WARC files can be large)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def digest_file(path: Path) -> Path:
    """Where the recorded digest of ``path`` lives."""
    return path.with_name(path.name + SUFFIX)


def record_digest(path: Path, digest: str, name: str | None = None) -> None:
    """Record ``digest`` as that of ``path`` (whose final name is ``name``, default its own),
    atomically, in ``sha256sum`` format."""
    final = name or path.name
    write_atomic(path.with_name(final + SUFFIX), f"{digest}  {final}\n".encode())


def recorded_digest(path: Path) -> str | None:
    """The digest recorded for ``path``; None when none was (a file of an older release)."""
    try:
        text = digest_file(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split(" ", 1)[0].strip()
    return digest if len(digest) == 64 else None


def damage(path: Path, actual: str | None = None) -> str | None:
    """What is wrong with the backup at ``path`` (missing, or not matching its recorded
    digest), or None when it is intact or has no recorded digest. ``actual`` is its digest
    when the caller has it already (a large WARC is then read once, not twice)."""
    if not path.is_file():
        return f"{path} is missing"
    expected = recorded_digest(path)
    if expected is None:
        return None
    actual = actual or file_digest(path)
    if actual != expected:
        return (
            f"{path} is damaged: its sha256 is {actual[:16]}…, not the {expected[:16]}… "
            f"recorded when it was written ({digest_file(path).name})"
        )
    return None


def check_backup(path: Path, restore_hint: str = "") -> None:
    """Raise :class:`BackupDamaged` if :func:`damage` finds the backup missing or damaged.

    ``restore_hint`` is added to the message (where a good copy is, e.g. the day's bag).
    """
    problem = damage(path)
    if problem is not None:
        hint = restore_hint or "restore it from a backup, or fetch the day again with --rescrape"
        raise BackupDamaged(f"{problem}; {hint}")


def restore_hint(root: DataRoot, day: date, backup: Path) -> str:
    """How to restore ``backup`` of ``day``: from the day's bag when its copy is the one
    whose digest was recorded, else from a backup or by fetching the day again."""
    copy = root.archived_copy(day, backup)
    expected = recorded_digest(backup)
    if copy.is_file() and expected is not None and file_digest(copy) == expected:
        return f"the day's bag holds an intact copy: `cp {copy} {backup}`, then run again"
    return "restore it from a backup, or fetch the day again with --rescrape"
