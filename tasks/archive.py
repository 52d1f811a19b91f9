"""Archive one day's products as a BagIt bag (RFC 8493, sha256 manifest) for the researchers.

The bag holds the lots observed that day as CSV (for spreadsheets) and JSON lines, the stored
pages and image index of every site, and a provenance record (code commit, flow run, Slurm
jobs, package versions). It is built in a hidden directory and renamed into place, so
``archive/<date>/`` is either a complete, verifiable bag or absent.
"""

from __future__ import annotations

import csv
import io
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
from tasks.runinfo import RunPlace, slurm_jobs, where_am_i
from tasks.storage import DataRoot, staged_directory
from tasks.store import connect

REPO_ROOT = Path(__file__).resolve().parents[1]
# What the lot is (from ``lots``) and what was observed of it that day (from ``observations``):
# the bag of a day reads the same when it is rebuilt after later days were loaded.
LOT_COLUMNS = [
    "l.site",
    "l.lot_key",
    "l.url",
    "l.lot_number",
    "l.title",
    "l.description",
    "l.currency",
    "l.sale_date",
    "l.image_urls",
    "l.first_seen",
    "o.crawl_date",
    "o.sold",
    "o.sold_price",
    "o.estimate_low",
    "o.estimate_high",
]
CSV_COLUMNS = [column.split(".", 1)[1] for column in LOT_COLUMNS]
PROVENANCE_PACKAGES = [
    "prefect",
    "prefect-dask",
    "dask-jobqueue",
    "distributed",
    "parsel",
    "price-parser",
    "dateparser",
    "bagit",
]


@dataclass(frozen=True)
class ArchiveReport:
    """Where the day's bag is and what it holds."""

    day: str
    path: str
    lots: int
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
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def day_lots(database: Path, day: date) -> list[dict[str, object]]:
    """The lots observed on ``day``, with that day's observation, in a stable order."""
    conn = connect(database)
    try:
        conn.row_factory = lambda cursor, row: {
            col[0]: value for col, value in zip(cursor.description, row, strict=True)
        }
        return list(
            conn.execute(
                f"SELECT {', '.join(LOT_COLUMNS)} FROM lots l "
                "JOIN observations o ON o.site = l.site AND o.lot_key = l.lot_key "
                "WHERE o.crawl_date = ? ORDER BY l.site, l.lot_number, l.lot_key",
                (day.isoformat(),),
            )
        )
    finally:
        conn.close()


def archive_day(
    day: date,
    data_root: str,
    flow_run_id: str | None,
    places: list[RunPlace],
) -> ArchiveReport:
    """Build ``archive/<day>/`` as a validated BagIt bag of everything collected that day.

    The bag covers every site with data for the day, not only the sites of this run, so a
    re-run of one site (``--site``) rebuilds a complete bag rather than a partial one.
    """
    root = DataRoot(Path(data_root))
    final = root.archive_dir(day)
    lots = day_lots(root.database, day)
    raw_day = root.raw_dir(day, "_").parent
    sites = sorted(p.name for p in raw_day.iterdir() if p.is_dir() and not p.name.startswith("."))
    with staged_directory(final) as stage:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(lots)
        write_atomic(stage / "lots.csv", buffer.getvalue().encode())
        jsonl = "".join(json.dumps(lot, ensure_ascii=False) + "\n" for lot in lots)
        write_atomic(stage / "lots.jsonl", jsonl.encode())
        for site in sites:
            raw = root.raw_dir(day, site)
            for source in sorted(raw.rglob("*")):
                if source.is_file():
                    _link_or_copy(source, stage / "pages" / site / source.relative_to(raw))
        provenance = {
            "day": day.isoformat(),
            "code_commit": code_commit(),
            "flow_run_id": flow_run_id,
            "sites_with_pages": sites,
            "slurm_jobs": slurm_jobs(places),
            "packages": {name: metadata.version(name) for name in PROVENANCE_PACKAGES},
        }
        write_atomic(stage / "provenance.json", json.dumps(provenance, indent=2).encode())
        bag = bagit.make_bag(
            str(stage),
            bag_info={
                "Source-Organization": "auction-pipeline",
                "External-Description": f"Auction lots observed on {day.isoformat()}",
                "External-Identifier": f"auction-pipeline/{day.isoformat()}",
            },
            checksums=["sha256"],
        )
        bag.validate()
        files = sum(1 for _ in bag.payload_files())
    return ArchiveReport(day=day.isoformat(), path=str(final), lots=len(lots), files=files)
