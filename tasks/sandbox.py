"""A sandbox on another data root's page backups: read there, write only here.

Developers try a selector fix or a new processing step against what the dev deployment
downloaded (seed hpc-project-deployment: a sandbox stage before dev and prod), without
fetching the sites again and without any risk to the dev data. ``run`` and ``reprocess``
take ``--backups-from DIR``: before the flow starts, the day's page backups in ``DIR`` (every
crawl's WARC file with its recorded digest, its images manifest and its failed-URL list) are
copied into the run's own data root, each checked against its digest first, and the run
then works on its own copies as usual. Nothing is ever written under ``DIR``: no lock, no
temp file, no digest (``DIR`` may be read-only).

A copy already in the sandbox is kept when it is the same file; a different file of the same
name is never overwritten (the sandbox's own data is not silently replaced): the import is
refused naming both, and nothing of it is copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from infra.atomic import copy_atomic
from tasks.checksums import damage, digest_file, file_digest, recorded_digest
from tasks.storage import DataRoot


class SandboxError(RuntimeError):
    """The backups cannot be imported; the message names the file and what to do."""


@dataclass
class ImportReport:
    """What an import copied, and what the sandbox had already."""

    source: str
    day: str
    copied: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)

    def text(self) -> str:
        """One line for the terminal."""
        return (
            f"backups of {self.day} from {self.source}: {len(self.copied)} file(s) copied, "
            f"{len(self.kept)} already here (sites: {', '.join(self.sites) or 'none'})"
        )


def _same_root(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def _beside(warc: Path) -> list[Path]:
    """A WARC file's companions that the crawl wrote beside it (those that exist)."""
    stem = warc.name.removesuffix(".warc.gz")
    companions = [digest_file(warc)]
    for suffix in (".images.jsonl", ".failures.jsonl"):
        companions.append(warc.with_name(f"{stem}{suffix}"))
    return [path for path in companions if path.is_file()]


def import_backups(
    source_root: Path, target: DataRoot, day: date, sites: list[str] | None = None
) -> ImportReport:
    """Copy ``day``'s page backups of ``sites`` (default: all) from ``source_root`` into
    ``target``, only reading the source. Raises :class:`SandboxError` when the source is
    the target (or inside it, or around it), has no backup of the day, holds a damaged
    backup, or the sandbox holds a different file of the same name; nothing is copied then.
    """
    if _same_root(source_root, target.path):
        raise SandboxError(
            f"--backups-from {source_root} is the run's own data root {target.path} (or "
            "inside or around it); give another data root to read from"
        )
    source = DataRoot(source_root)
    crawls = source.crawls_of(day)
    wanted = {(crawl, site) for crawl, names in crawls.items() for site in names
              if sites is None or site in sites}  # fmt: skip
    if not wanted:
        which = f" of {', '.join(sites)}" if sites else ""
        raise SandboxError(
            f"no page backup of {day}{which} in {source.warc_dir(day)}: nothing to work on "
            "(check the date and the directory: it is a data root, holding warc/<date>/)"
        )
    plan: list[tuple[Path, Path]] = []
    digests: dict[Path, str] = {}
    for crawl, site in sorted(wanted, key=lambda item: (item[0].moment, item[1])):
        warc = source.warc_file(crawl, site)
        actual = file_digest(warc)
        problem = damage(warc, actual)
        if problem is not None:
            raise SandboxError(f"{problem}; nothing was imported (the source is left as it is)")
        if recorded_digest(warc) is None:
            raise SandboxError(
                f"{warc} has no recorded digest ({digest_file(warc).name}), so its copy could "
                "not be checked; nothing was imported"
            )
        digests[warc] = actual
        # The WARC last: a crawl's backup counts once its file is there (DataRoot.crawls_of),
        # so its digest and manifests must be in place before it.
        for path in (*_beside(warc), warc):
            plan.append((path, target.warc_dir(crawl) / path.name))
    report = ImportReport(str(source_root), day.isoformat(), sites=sorted({s for _, s in wanted}))
    for path, copy in plan:  # every conflict is found before anything is copied
        if copy.exists() and file_digest(copy) != (digests.get(path) or file_digest(path)):
            raise SandboxError(
                f"{copy} exists and differs from {path}; the sandbox's own file is not "
                "overwritten: move it away (or use another --data-root), then run again. "
                "Nothing was imported"
            )
    for path, copy in plan:
        if copy.exists():
            report.kept.append(copy.name)
            continue
        copy_atomic(path, copy)
        report.copied.append(copy.name)
    return report
