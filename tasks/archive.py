"""Archive one day's products as a BagIt bag (RFC 8493, sha256 manifests) for the researchers.

Layout of ``archive/<date>/``::

    bagit.txt, bag-info.txt, manifest-sha256.txt, tagmanifest-sha256.txt
    provenance.json              tag file: code commit, flow run, Slurm jobs, versions
    data/tables/                 lots and observations of the day: Parquet, CSV, dictionary
    data/warc/                   the day's WARC page backups, one per site
    data/images/                 which image (sha256) each lot page showed, per site

Everything run-specific (flow run id, Slurm jobs, commit) is kept out of ``data/``, and
``Bagging-Date`` is the archived day, so re-archiving the same data yields byte-identical
payload files and payload manifest. The bag is built in a hidden directory, validated, and
renamed into place: ``archive/<date>/`` is either a complete, verified bag or absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import metadata
from pathlib import Path

import bagit

from infra.atomic import clone_into, write_atomic
from tasks.checksums import damage, file_digest, restore_hint
from tasks.currency import data_version
from tasks.export import export_day
from tasks.runinfo import RunPlace, slurm_jobs, where_am_i
from tasks.storage import DataRoot, backup_name, staged_directory

REPO_ROOT = Path(__file__).resolve().parents[1]
PROVENANCE_PACKAGES = [
    "auction-pipeline", "prefect", "prefect-dask", "dask-jobqueue", "distributed", "parsel",
    "price-parser", "dateparser", "currencyconverter", "warcio", "bagit", "sqlalchemy",
    "pyarrow",
]  # fmt: skip


@dataclass(frozen=True)
class ArchiveReport:
    """Where the day's bag is and what it holds."""

    day: str
    path: str
    files: int
    # Where the previous bag was kept because it held backups the new one does not.
    superseded: str | None = None
    place: RunPlace = field(default_factory=where_am_i)


def code_commit() -> str | None:
    """The git commit of this checkout, when it is one."""
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class ArchiveRefused(RuntimeError):
    """Rebuilding the day's bag would lose or archive damaged data; nothing was changed."""


def copy_into_bag(source: Path, target: Path) -> None:
    """Give the bag its own copy of ``source``: a reflink where the filesystem has them, else
    a byte copy. Never a hard link: the bag and the working file must not be one inode, or
    damage to one (or a rescrape replacing it) would change or drop the other."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as dst:
        clone_into(src, dst)
    shutil.copystat(source, target)


def _bag_manifest(bag: Path) -> dict[str, str]:
    """``data/...`` path -> sha256 of a complete bag's payload manifest ({} if none)."""
    try:
        text = (bag / "manifest-sha256.txt").read_text(encoding="utf-8")
    except OSError:
        return {}
    entries = {}
    for line in text.splitlines():
        digest, _, name = line.partition(" ")
        if name.strip():
            entries[name.strip()] = digest
    return entries


BACKUP_FOLDERS = ("data/warc/", "data/images/")


def _site_of(name: str, day: date) -> str:
    """The site of a backup file name (``<site>-<crawl>.warc.gz`` / ``.images.jsonl``)."""
    parts = backup_name(name)
    return parts[0] if parts is not None else name


def _backups(root: DataRoot, day: date) -> dict[str, Path]:
    """The page backups and image manifests of every crawl of the day: bag path
    (``data/...``) -> working file."""
    found = {}
    for source in sorted(root.warc_dir(day).glob("*")):
        parts = backup_name(source.name)
        if parts is not None and parts[1].day == day and parts[2] in ("warc.gz", "images.jsonl"):
            found[str(root.archived_copy(day, source).relative_to(root.archive_dir(day)))] = source
    return found


def _old_backups(bag: Path) -> dict[str, set[str]]:
    """The backups a complete bag holds: ``data/...`` path -> the digests it stands for (the
    manifest's, and the file's own if it differs or is not listed)."""
    held: dict[str, set[str]] = {}
    for entry, digest in _bag_manifest(bag).items():
        if entry.startswith(BACKUP_FOLDERS):
            held.setdefault(entry, set()).add(digest)
    for folder in BACKUP_FOLDERS:
        for file in sorted((bag / folder).glob("*")):
            held.setdefault(f"{folder}{file.name}", set()).add(file_digest(file))
    return held


def _check_nothing_lost(
    root: DataRoot, day: date, backups: dict[str, Path], drop_sites: frozenset[str]
) -> list[str]:
    """The old bag's backups that the new bag would not hold byte-identical.

    Raises ArchiveRefused when a working backup is damaged, or when the old bag holds a
    backup of a site that ``warc/<day>/`` no longer has and ``drop_sites`` does not name it.
    """
    final = root.archive_dir(day)
    old = _old_backups(final)
    new = {entry: file_digest(source) for entry, source in backups.items()}
    for entry, source in backups.items():
        problem = damage(source, new[entry])
        if problem is not None:
            raise ArchiveRefused(
                f"{problem}; the bag {final} was left as it was; {restore_hint(root, day, source)}"
            )
    missing = [e for e in old if e not in new and _site_of(Path(e).name, day) not in drop_sites]
    if missing:
        names = sorted({_site_of(Path(e).name, day) for e in missing})
        restore = "; ".join(f"cp {final / e} {root.warc_dir(day)}/" for e in missing)
        raise ArchiveRefused(
            f"the bag {final} holds {', '.join(Path(e).name for e in missing)}, which "
            f"{root.warc_dir(day)} no longer has; the bag was left as it was. Restore with "
            f"`{restore}` and run again, or rebuild without them with "
            f"{' '.join(f'--drop-site {n}' for n in names)} (the current bag is then kept "
            "under archive/.superseded/)"
        )
    return sorted(e for e, digests in old.items() if new.get(e) not in digests)


def archive_day(
    day: date,
    data_root: str,
    database_url: str,
    flow_run_id: str | None,
    places: list[RunPlace],
    drop_sites: list[str] | None = None,
) -> ArchiveReport:
    """Build ``archive/<day>/`` as a validated BagIt bag of everything collected that day.

    The bag covers every site with data for the day, not only the sites of this run, so a
    re-run of one site (``--site``) rebuilds a complete bag rather than a partial one. The bag
    holds its own copies of the backups (:func:`copy_into_bag`). Nothing the old bag holds is
    lost: a damaged working backup, or one that is gone while the old bag has it (unless its
    site is in ``drop_sites``), refuses the rebuild (:class:`ArchiveRefused`); an old bag
    holding a backup the new one does not hold byte-identical (a rescrape, a dropped site) is
    kept under ``archive/.superseded/<day>-<time>/`` instead of being deleted.
    """
    root = DataRoot(Path(data_root))
    final = root.archive_dir(day)
    backups = _backups(root, day)
    lost = _check_nothing_lost(root, day, backups, frozenset(drop_sites or ()))
    keep = None
    if lost:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        keep = root.path / "archive" / ".superseded" / f"{day.isoformat()}-{stamp}"
    with staged_directory(final, keep_previous_as=keep) as stage:
        export_day(database_url, day, stage / "tables")
        for entry, source in backups.items():
            copy_into_bag(source, stage / entry.removeprefix("data/"))
        bag = bagit.make_bag(
            str(stage),
            bag_info={
                "Source-Organization": "auction-pipeline",
                "External-Description": f"Online auction lots observed on {day.isoformat()}",
                "External-Identifier": f"auction-pipeline/{day.isoformat()}",
                "Bagging-Date": day.isoformat(),
            },
            checksums=["sha256"],
        )
        provenance = {
            "day": day.isoformat(),
            "code_commit": code_commit(),
            "flow_run_id": flow_run_id,
            "slurm_jobs": slurm_jobs(places),
            "exchange_rates": data_version(),
            "packages": {name: metadata.version(name) for name in PROVENANCE_PACKAGES},
        }
        write_atomic(stage / "provenance.json", json.dumps(provenance, indent=2).encode())
        bag.save()  # rewrites the tag manifest to cover provenance.json
        bag.validate()
        files = sum(1 for _ in bag.payload_files())
    return ArchiveReport(
        day=day.isoformat(),
        path=str(final),
        files=files,
        superseded=str(keep) if keep else None,
    )


@dataclass(frozen=True)
class BagCheck:
    """The outcome of validating one day's bag."""

    day: str
    path: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when the bag is complete and every checksum matches."""
        return not self.problems


def _bag_problems(path: Path) -> list[str]:
    """Everything wrong with the bag at ``path``, file by file where bagit can say."""
    try:
        bag = bagit.Bag(str(path))
        bag.validate()
    except bagit.BagValidationError as exc:
        problems = [str(d) for d in getattr(exc, "details", [])] or [str(exc)]
        if "Payload-Oxum" in str(exc):
            # The size check stops validation before any checksum is compared; compare them
            # too, so the report names the files that changed.
            bag.info.pop("Payload-Oxum", None)
            try:
                bag.validate()
            except bagit.BagValidationError as deeper:
                problems += [str(d) for d in getattr(deeper, "details", [])] or [str(deeper)]
        return problems
    except bagit.BagError as exc:
        return [str(exc)]
    return []


def _working_problems(root: DataRoot, day: date) -> list[str]:
    """What is wrong with the day's working backups against their recorded digests and the
    day's bag: a file the bag holds that ``warc/<day>/`` lacks or holds otherwise, and a file
    that no longer matches the digest recorded when it was written."""
    bag = root.archive_dir(day)
    in_bag = {e: d for e, d in _bag_manifest(bag).items() if e.startswith(BACKUP_FOLDERS)}
    problems = []
    working = _backups(root, day)
    for entry, source in working.items():
        actual = file_digest(source)
        problem = damage(source, actual)
        if problem is not None:
            problems.append(problem)
        elif entry in in_bag and actual != in_bag[entry]:
            problems.append(f"{source} differs from the bag's copy {bag / entry}")
    for entry in sorted(in_bag.keys() - working.keys()):
        name = Path(entry).name
        problems.append(
            f"{root.warc_dir(day) / name} is missing; the bag holds a copy: "
            f"cp {bag / entry} {root.warc_dir(day)}/"
        )
    return problems


def _day_of(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def verify_archives(data_root: Path, day: date | None = None) -> list[BagCheck]:
    """Validate the bag of ``day`` (or of every day with a bag or page backups) under
    ``data_root``, and the day's working backups against their digests and the bag; say
    file by file what is damaged or missing."""
    root = DataRoot(data_root)
    if day is not None:
        days = [day]
    else:
        found = {
            _day_of(p.name)
            for folder in (root.path / "archive", root.path / "warc")
            for p in folder.glob("*")
            if p.is_dir() and not p.name.startswith(".")
        }
        days = sorted(d for d in found if d is not None)
    checks = []
    for one in days:
        path = root.archive_dir(one)
        problems: list[str] = []
        if not path.is_dir():
            problems.append(f"no bag at {path}")
        else:
            problems.extend(_bag_problems(path))
        problems.extend(_working_problems(root, one))
        checks.append(BagCheck(day=one.isoformat(), path=str(path), problems=problems))
    return checks
