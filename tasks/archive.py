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
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path

import bagit

from infra.atomic import write_atomic
from tasks.currency import data_version
from tasks.export import export_day
from tasks.runinfo import RunPlace, slurm_jobs, where_am_i
from tasks.storage import DataRoot, staged_directory

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


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` into the bag (same filesystem), else copy it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def archive_day(
    day: date,
    data_root: str,
    database_url: str,
    flow_run_id: str | None,
    places: list[RunPlace],
) -> ArchiveReport:
    """Build ``archive/<day>/`` as a validated BagIt bag of everything collected that day.

    The bag covers every site with data for the day, not only the sites of this run, so a
    re-run of one site (``--site``) rebuilds a complete bag rather than a partial one.
    """
    root = DataRoot(Path(data_root))
    final = root.archive_dir(day)
    backups = sorted(root.warc_dir(day).glob(f"*-{day.isoformat()}.*"))
    with staged_directory(final) as stage:
        export_day(database_url, day, stage / "tables")
        for source in backups:
            if source.name.endswith(".warc.gz"):
                _link_or_copy(source, stage / "warc" / source.name)
            elif source.name.endswith(".images.jsonl"):
                _link_or_copy(source, stage / "images" / source.name)
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
    return ArchiveReport(day=day.isoformat(), path=str(final), files=files)


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


def verify_archives(data_root: Path, day: date | None = None) -> list[BagCheck]:
    """Validate the bag of ``day`` (or every bag) under ``data_root``; say what is wrong."""
    archive = DataRoot(data_root).path / "archive"
    if day is not None:
        paths = [DataRoot(data_root).archive_dir(day)]
    else:
        paths = sorted(p for p in archive.glob("*") if p.is_dir() and not p.name.startswith("."))
    checks = []
    for path in paths:
        problems: list[str] = []
        if not path.is_dir():
            problems.append(f"no bag at {path}")
        else:
            problems.extend(_bag_problems(path))
        checks.append(BagCheck(day=path.name, path=str(path), problems=problems))
    return checks
