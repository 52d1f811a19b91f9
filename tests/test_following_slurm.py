"""The marketplaces followed over three demo days on the local Slurm cluster (issue 14).

``auction-pipeline run --profile dev --at HH:MM`` four times, the demo's clock moved between
runs (14 March 06:00 and 18:00 UTC, 15 March 12:00, 16 March 12:00), one lot per marketplace
hidden from the searches on the 15th: every crawl's observations against the catalogue as of
its time, each followed lot to its final price, sellers once per crawl, each day's bag
valid and holding every crawl of the day, and a re-run of the last crawl changing nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from expected import FOLLOW_MOMENTS, follow_subjects, followed, lifecycle

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.marketplaces import MarketCatalogue
from sites.demo.server import DemoSite
from tasks.store import database_url_for, table_rows

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]
TABLES = ("lots", "observations", "search_hits", "sellers", "seller_observations")


def _run(cli: Any, env: dict[str, str], data_root: Path, moment: Any) -> Any:
    sites = [arg for site in MARKETPLACES for arg in ("--site", site)]
    return cli(
        "run", "--profile", "dev", "--date", moment.date().isoformat(),
        "--at", f"{moment:%H:%M}", "--data-root", str(data_root), "--json", *sites,
        env=env, timeout=900,
    )  # fmt: skip


@pytest.mark.timeout(2400)
def test_marketplaces_followed_over_three_days_and_two_crawls_a_day(
    slurm_conf: Path, prefect_api_url: str, cli: Any, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    url = database_url_for(data_root)
    config = DemoConfig(market_time=FOLLOW_MOMENTS[0])
    subjects = follow_subjects(config)
    hidden = frozenset(lot.lot_id for lot in subjects.values())
    plan = [
        (moment, hidden if moment.date() == FOLLOW_MOMENTS[2].date() else frozenset())
        for moment in FOLLOW_MOMENTS
    ]
    summaries = []
    with DemoSite(config) as demo:
        env = {
            "PREFECT_API_URL": prefect_api_url,
            "DEMO_SITE_URL": demo.url,
            "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
        }
        for moment, hide in plan:
            demo.reconfigure(market_time=moment, hidden_from_search=hide)
            sellers_before = demo.request_count("/catawiki/u/")
            result = _run(cli, env, data_root, moment)
            assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
            summaries.append(json.loads(result.stdout))
            # Each Catawiki seller of the crawl's lots fetched once, however many lots.
            catalogue = MarketCatalogue(config).at(moment)
            crawl_ids = {
                r["lot_key"]
                for r in table_rows(url, "observations")
                if r["site"] == "catawiki" and r["crawl_time"] == moment
            }
            sellers = {catalogue.lot("catawiki", i).seller.seller_id for i in crawl_ids}  # type: ignore[union-attr]
            assert demo.request_count("/catawiki/u/") - sellers_before == len(sellers)
        before = {t: table_rows(url, t) for t in TABLES}
        sent = demo.request_count()
        again = _run(cli, env, data_root, FOLLOW_MOMENTS[-1])
        assert again.returncode == 0, again.stderr[-3000:]
        assert demo.request_count() == sent  # the finished crawl's backups are reused
        assert {t: table_rows(url, t) for t in TABLES} == before

    # Every crawl: the lots found or followed, as the catalogue has them at its time.
    expected = followed(config, plan)
    observed: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for row in table_rows(url, "observations"):
        observed.setdefault(row["crawl_id"], {})[(row["site"], row["lot_key"])] = row
    ids = [s["crawl"] for s in summaries]
    assert ids == ["2026-03-14T0600Z", "2026-03-14T1800Z", "2026-03-15T1200Z", "2026-03-16T1200Z"]
    assert sorted(observed) == ids
    for crawl_id, moment, wanted in zip(ids, FOLLOW_MOMENTS, expected, strict=True):
        assert set(observed[crawl_id]) == wanted, crawl_id
        catalogue = MarketCatalogue(config).at(moment)
        for (site, lot_id), row in observed[crawl_id].items():
            lot = catalogue.lot(site, lot_id)
            assert lot is not None
            truth = lifecycle(lot)
            assert {k: row[k] for k in truth} == truth, (crawl_id, site, lot_id)
            assert row["status"] != "unsold" or lot.closed  # never unsold while open
    revisited = [sum(s["sites"][m]["revisited"] for m in MARKETPLACES) for s in summaries]
    assert revisited[0] == 0 and all(revisited[1:]), revisited

    # The lots that left the search results on the 15th: followed to their final price.
    lots = {(r["site"], r["lot_key"]): r for r in table_rows(url, "lots")}
    for site, lot in subjects.items():
        rows = [observed[crawl_id][(site, lot.lot_id)] for crawl_id in ids]
        bids = [row["bid_count"] for row in rows]
        assert bids == sorted(bids) and bids[0] < bids[-1], (site, bids)
        assert [row["status"] for row in rows] == ["open", "open", "open", "sold"], site
        assert rows[-1]["sold_price"] == lot.final_price
        assert (lots[(site, lot.lot_id)]["status"], lots[(site, lot.lot_id)]["sold_price"]) == (
            "sold", lot.final_price,
        )  # fmt: skip
    assert len(lots) == len(set().union(*expected))  # one lot row per lot, whatever its crawls

    # Each day's bag holds every crawl of that day and validates.
    for day in ("2026-03-14", "2026-03-15", "2026-03-16"):
        verify = cli("archive", "verify", day, "--data-root", str(data_root), env=env, timeout=300)
        assert verify.returncode == 0, verify.stdout[-2000:] + verify.stderr[-2000:]
        bag = data_root / "archive" / day / "data"
        crawls = {c for c in ids if c.startswith(day)}
        warcs = {p.name for p in (bag / "warc").glob("*.warc.gz")}
        assert warcs == {f"{site}-{c}.warc.gz" for site in MARKETPLACES for c in crawls}, day
        exported = (bag / "tables" / "observations.csv").read_text().splitlines()
        assert len(exported) - 1 == sum(len(observed[c]) for c in crawls), day
