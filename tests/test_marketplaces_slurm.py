"""Issue 13 end to end on the Slurm dev partition: one run crawls the three demo marketplaces
(keyword searches, data embedded in pages, JSON APIs and follow-ups) beside the three houses,
and stores each lot a query finds exactly once, with its title, current bid or price,
currency and the queries that found it. Running the day again changes no row; ``reprocess``
gives the same rows without a request. On a later day a lot served under a new slug is the
same lot, and a JSON key the eBay pages rename quarantines eBay alone, naming the field and
its fill rate.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from expected import SITES, all_lots, lifecycle, market_hits

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.marketplaces import MarketCatalogue
from sites.demo.server import DemoSite
from tasks.store import database_url_for, table_rows

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 3, 14)
TABLES = ("houses", "sales", "lots", "observations", "search_hits", "sellers",
          "seller_observations")  # fmt: skip


def _run(cli: Any, env: dict[str, str], day: date, data_root: Path, *more: str) -> Any:
    return cli(
        "run", "--profile", "dev", "--date", day.isoformat(), "--data-root", str(data_root),
        "--json", *more, env=env, timeout=900,
    )  # fmt: skip


def _snapshot(url: str) -> dict[str, list[dict[str, Any]]]:
    return {name: table_rows(url, name) for name in TABLES}


def _check_against_catalogue(url: str, config: DemoConfig) -> None:
    """Every lot a query finds stored once, with what its page shows and who found it."""
    catalogue = MarketCatalogue(config)
    hits = market_hits(config)
    lots = {(r["site"], r["lot_key"]): r for r in table_rows(url, "lots")}
    market_rows = {key: row for key, row in lots.items() if key[0] in MARKETPLACES}
    assert sorted(market_rows) == sorted(hits)  # each once, nothing else (no sponsored)
    found: dict[tuple[str, str], list[str]] = {}
    for row in table_rows(url, "search_hits"):
        found.setdefault((row["site"], row["lot_key"]), []).append(row["query"])
    assert {k: sorted(v) for k, v in found.items()} == {k: sorted(v) for k, v in hits.items()}
    for (site, lot_id), row in market_rows.items():
        lot = catalogue.lot(site, lot_id)
        assert lot is not None
        assert row["title"] == lot.title, (site, lot_id)
        assert row["currency"] == lot.currency, (site, lot_id)
        assert row["current_bid"] == lot.price, (site, lot_id)
        expected = lifecycle(lot)  # an open lot's "sold" is unknown, never false
        assert {name: row[name] for name in expected} == expected, (site, lot_id)
        assert row["lot_number"] is None
    # The queries overlap, and the top results reach past the first result page.
    assert any(len(queries) > 1 for queries in hits.values())
    page_size = config.search_page_size
    for site in MARKETPLACES:
        deep = [
            lot
            for query in ("mambila", "mambilla", "chamba")
            for lot in catalogue.search(site, query)[page_size:20]
        ]
        assert deep and all((site, lot.lot_id) in market_rows for lot in deep), site
    sponsored = {lot.lot_id for page in (1, 2) for _, lot in catalogue.sponsored("mambila", page)}
    assert sponsored and not {("ebay", s) for s in sponsored} & set(market_rows)
    # Every lot names its seller; each seller of a found lot has its profile stored once.
    sellers = {(site, catalogue.lot(site, i).seller.seller_id) for site, i in hits}  # type: ignore[union-attr]
    assert {(site, row["seller_id"]) for (site, _), row in market_rows.items()} == sellers
    assert {(r["site"], r["seller_id"]) for r in table_rows(url, "sellers")} == sellers


@pytest.mark.timeout(1800)
def test_marketplaces_and_houses_in_one_run_then_rerun_reprocess_renamed_slug_and_key(
    slurm_conf: Path, prefect_api_url: str, cli, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    url = database_url_for(data_root)
    config = DemoConfig()
    with DemoSite(config) as demo:
        env = {
            "PREFECT_API_URL": prefect_api_url,
            "DEMO_SITE_URL": demo.url,
            "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
        }
        # 1. One run, six sites, every task in a Slurm job on partition dev.
        first = _run(cli, env, DAY, data_root)
        assert first.returncode == 0, first.stderr[-3000:] + first.stdout[-2000:]
        summary = json.loads(first.stdout)
        assert set(summary["sites"]) == set(SITES)
        assert {p["partition"] for p in summary["task_places"]} == {"dev"}
        assert all(p["slurm_job_id"] for p in summary["task_places"])
        stored = {(r["site"], r["lot_key"]) for r in table_rows(url, "lots")}
        assert stored == all_lots(config, DAY)
        _check_against_catalogue(url, config)
        before = _snapshot(url)
        bag_sellers = data_root / "archive" / DAY.isoformat() / "data" / "tables" / "sellers.csv"
        assert len(bag_sellers.read_text().splitlines()) == 1 + len(before["sellers"])
        verify = cli("archive", "verify", DAY.isoformat(), "--data-root",
                     str(data_root), env=env, timeout=300)  # fmt: skip
        assert verify.returncode == 0, verify.stderr[-2000:]

        # 2. The same day again: no request, no row changed.
        sent = demo.request_count()
        again = _run(cli, env, DAY, data_root)
        assert again.returncode == 0, again.stderr[-3000:]
        assert demo.request_count() == sent
        assert _snapshot(url) == before

        # 3. Reprocess the day from its WARCs: the same rows, not one request.
        redo = cli(
            "reprocess", "--date", DAY.isoformat(), "--profile", "dev", "--data-root",
            str(data_root), "--json", env=env, timeout=900,
        )  # fmt: skip
        assert redo.returncode == 0, redo.stderr[-3000:]
        assert demo.request_count() == sent
        assert _snapshot(url) == before

    # 4. A later day: some lots under a new slug, and eBay renames its bid price key.
    hits = market_hits(config)
    moved = sorted(lot_id for site, lot_id in hits if site != "ebay")[:4]
    later = DemoConfig(renamed_slugs=frozenset(moved), renamed_json_key=frozenset({"ebay"}))
    next_day = DAY + timedelta(days=1)
    with DemoSite(later) as demo:
        env["DEMO_SITE_URL"] = demo.url
        changed = _run(cli, env, next_day, data_root)
    assert changed.returncode == 1, changed.stderr[-3000:]
    sites = json.loads(changed.stdout)["sites"]
    error = sites["ebay"]["error"]
    assert "LayoutChangeError" in error and "current_bid 0%" in error, error
    assert all(not sites[s].get("error") for s in SITES if s != "ebay"), sites
    rows = {
        (r["site"], r["lot_key"]): r for r in table_rows(url, "lots") if r["site"] in MARKETPLACES
    }
    assert set(rows) == set(hits)  # a new slug made no second lot
    catalogue = MarketCatalogue(later)
    for lot_id in moved:
        site = next(s for s, i in hits if i == lot_id)
        row = rows[(site, lot_id)]
        lot = catalogue.lot(site, lot_id)
        assert lot is not None and row["url"].endswith(lot.path), (row["url"], lot.path)
        assert row["last_seen"] == next_day and row["first_seen"] == DAY
    assert all(r["last_seen"] == DAY for k, r in rows.items() if k[0] == "ebay")
    quarantine = data_root / "quarantine" / next_day.isoformat() / "ebay.jsonl"
    assert len(quarantine.read_text().splitlines()) == sum(1 for k in hits if k[0] == "ebay")
