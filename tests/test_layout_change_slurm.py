"""Issue 3 end to end on the Slurm dev partition, tasks running in Slurm jobs: a site changes
its layout → that site is quarantined while the others load; the selectors are fixed → the
day is reprocessed from its WARC backup without one request to the site; the day is run
again → nothing is fetched, and row counts and archive checksums stay the same."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
import yaml

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig
from sites.demo.server import DemoSite
from sites.loader import SITES_DIR
from tasks.store import database_url_for, table_rows

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 4, 2)
TABLES = ("houses", "sales", "lots", "observations")

# Selectors for the demo's redesigned lot page (class names of the "lot-v2" layout).
V2_SELECTORS = {
    "lot_number": ".lot-v2__num",
    "title": ".lot-v2__heading",
    "sale_date": ".lot-v2__when",
    "description": ".lot-v2__text",
    "estimate": ".lot-v2__range",
    "price": ".lot-v2__outcome",
    "images": ".lot-v2__media img::attr(src)",
}


def _fixed_sites(directory: Path) -> Path:
    """A copy of the site files with harrow-finch's selectors fixed for the new layout."""
    directory.mkdir()
    for path in SITES_DIR.glob("*.yaml"):
        shutil.copy(path, directory / path.name)
    harrow = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    for field, css in V2_SELECTORS.items():
        harrow["fields"][field]["selector"] = {"css": css}
    (directory / "harrow-finch.yaml").write_text(yaml.safe_dump(harrow, allow_unicode=True))
    return directory


def test_layout_change_quarantine_reprocess_and_idempotent_rerun(
    slurm_conf: Path, prefect_api_url: str, cli, tmp_path: Path
) -> None:
    config = DemoConfig(changed_layout=frozenset({"harrow-finch"}))
    data_root = tmp_path / "data"
    url = database_url_for(data_root)
    with DemoSite(config) as site:
        env = {
            "PREFECT_API_URL": prefect_api_url,
            "DEMO_SITE_URL": site.url,
            "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
        }
        # The houses only: the marketplaces' layout changes are tests/test_marketplaces_slurm.py's.
        houses = [arg for house in HOUSES for arg in ("--site", house)]
        run = ("run", "--profile", "dev", "--date", DAY.isoformat(), "--data-root",
               str(data_root), "--json", *houses)  # fmt: skip

        # 1. The changed layout fails that site alone; its lots are quarantined.
        first = cli(*run, env=env)
        assert first.returncode == 1, first.stderr[-3000:]
        summary = json.loads(first.stdout)
        assert "LayoutChangeError" in summary["sites"]["harrow-finch"]["error"]
        assert {p["partition"] for p in summary["task_places"]} == {"dev"}
        assert all(p["slurm_job_id"] for p in summary["task_places"])
        quarantine = data_root / "quarantine" / DAY.isoformat() / "harrow-finch.jsonl"
        harrow_lots = Catalogue(config).lots("harrow-finch", DAY)
        assert len(quarantine.read_text().splitlines()) == len(harrow_lots)
        assert {r["site"] for r in table_rows(url, "lots")} == {
            "hotel-lumiere", "brooklyn-gallery"
        }  # fmt: skip

        # 2. Selectors fixed: reprocess from the WARC, not one request to the site.
        env["AUCTION_PIPELINE_SITES_DIR"] = str(_fixed_sites(tmp_path / "sites"))
        requests_before = site.request_count()
        again = cli(
            "reprocess",
            "--date",
            DAY.isoformat(),
            "--site",
            "harrow-finch",
            "--profile",
            "dev",
            "--data-root",
            str(data_root),
            "--json",
            env=env,
        )
        assert again.returncode == 0, again.stderr[-3000:]
        assert site.request_count() == requests_before
        assert not quarantine.exists()
        expected = {(s, lot.lot_id) for s in HOUSES for lot in Catalogue(config).lots(s, DAY)}
        assert {(r["site"], r["lot_key"]) for r in table_rows(url, "lots")} == expected
        tables = {name: table_rows(url, name) for name in TABLES}
        bag = Path(json.loads(again.stdout)["archive"])
        manifest = (bag / "manifest-sha256.txt").read_text()
        assert "data/warc/harrow-finch-2026-04-02.warc.gz" in manifest

        # 3. The same day again: nothing fetched, same rows, same archive checksums.
        rerun = cli(*run, env=env)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert site.request_count() == requests_before
        assert all(s["reused_backup"] for s in json.loads(rerun.stdout)["sites"].values())
        assert {name: table_rows(url, name) for name in TABLES} == tables
        assert (bag / "manifest-sha256.txt").read_text() == manifest
    verify = cli("archive", "verify", DAY.isoformat(), "--data-root", str(data_root))
    assert verify.returncode == 0 and f"{DAY.isoformat()}: ok" in verify.stdout
