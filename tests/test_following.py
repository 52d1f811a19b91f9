"""Following online lots until they close, over several crawls a day (issue 14, parts 3-4).

Four crawls of the three demo marketplaces with the demo's clock moved between them (14 March
06:00 and 18:00 UTC, 15 March 12:00, 16 March 12:00), through the pipeline's own scrape,
process and load steps: each crawl keeps its own observations, lots are revisited after they
leave the search results, bids rise, results and final prices arrive, and nothing open is
ever stored as unsold. Checked against the demo catalogue as of each crawl.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from crawling import crawl_here
from expected import FOLLOW_MOMENTS, follow_subjects, followed, lifecycle

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.marketplaces import MarketCatalogue
from sites.demo.server import DemoSite
from sites.loader import load_sites
from tasks.crawlid import CrawlId
from tasks.store import database_url_for, table_rows

MOMENTS = FOLLOW_MOMENTS
CRAWLS = [CrawlId(m.date(), time(m.hour, m.minute)) for m in MOMENTS]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("following")
    config = DemoConfig(market_time=MOMENTS[0])
    subjects = follow_subjects(config)
    hidden = frozenset(lot.lot_id for lot in subjects.values())
    plan = [(m, hidden if m.date() == MOMENTS[2].date() else frozenset()) for m in MOMENTS]
    with DemoSite(config) as site, pytest.MonkeyPatch.context() as env:
        env.setenv("DEMO_SITE_URL", site.url)
        sites = load_sites(list(MARKETPLACES))
        runs = []
        for (moment, hide), crawl in zip(plan, CRAWLS, strict=True):
            site.reconfigure(market_time=moment, hidden_from_search=hide)
            runs.append(crawl_here(root, sites, crawl))
        sent = site.request_count()
        again = crawl_here(root, sites, CRAWLS[-1])  # the last crawl re-run: reused, no change
        resent = site.request_count() - sent
    yield {"root": root, "config": config, "plan": plan, "runs": runs, "again": again,
           "resent": resent, "subjects": subjects}  # fmt: skip


def _observations(root: Path) -> dict[str, dict[tuple[str, str], dict[str, Any]]]:
    by_crawl: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    for row in table_rows(database_url_for(root), "observations"):
        by_crawl.setdefault(row["crawl_id"], {})[(row["site"], row["lot_key"])] = row
    return by_crawl


def test_each_crawl_keeps_its_observations_of_the_lots_found_and_followed(
    history: dict[str, Any],
) -> None:
    expected = followed(history["config"], history["plan"])
    observed = _observations(history["root"])
    assert sorted(observed) == [c.id for c in CRAWLS]
    for crawl, moment, wanted in zip(CRAWLS, MOMENTS, expected, strict=True):
        rows = observed[crawl.id]
        assert set(rows) == wanted, crawl
        catalogue = MarketCatalogue(history["config"]).at(moment)
        for (site, lot_id), row in rows.items():
            lot = catalogue.lot(site, lot_id)
            assert lot is not None
            truth = {**lifecycle(lot), "current_bid": lot.price}
            assert {k: row[k] for k in truth} == truth, (crawl.id, site, lot_id)
            assert row["crawl_time"] == moment
            if row["status"] in ("open", "upcoming"):
                assert row["sold"] is None  # never "unsold" while bidding is open
    # Some lots were only revisited, and results arrived for lots no search showed any more.
    revisits = [sum(run[s][0].revisited for s in MARKETPLACES) for run in history["runs"]]
    assert revisits[0] == 0 and all(revisits[1:]), revisits
    results = {row["status"] for rows in observed.values() for row in rows.values()}
    assert {"sold", "unsold", "withdrawn"} <= results, results


def test_a_lot_that_left_the_search_results_is_followed_to_its_final_price(
    history: dict[str, Any],
) -> None:
    observed = _observations(history["root"])
    lots = {
        (r["site"], r["lot_key"]): r for r in table_rows(database_url_for(history["root"]), "lots")
    }
    for site, lot in history["subjects"].items():
        key = (site, lot.lot_id)
        rows = [observed[c.id][key] for c in CRAWLS]  # one per crawl, the 15th's revisited
        revisited_on_15th = history["runs"][2][site][2]
        assert any(lot.path in url for url in revisited_on_15th), site
        bids = [row["bid_count"] for row in rows]
        assert bids == sorted(bids) and bids[0] < bids[-1], (site, bids)
        amounts = [row["current_bid"] for row in rows]
        assert amounts == sorted(amounts), (site, amounts)
        assert [row["status"] for row in rows] == ["open", "open", "open", "sold"], site
        assert rows[-1]["sold_price"] == lot.final_price and rows[-1]["sold"] is True
        latest = lots[key]  # one lot row, in its final state
        assert (latest["status"], latest["sold_price"]) == ("sold", lot.final_price)
        assert (latest["first_seen"], latest["last_seen"]) == (CRAWLS[0].day, CRAWLS[-1].day)


def test_rerunning_a_finished_crawl_sends_nothing_and_changes_nothing(
    history: dict[str, Any],
) -> None:
    assert history["resent"] == 0
    assert history["again"]["load"].new_lots == 0
    counts = {
        c.id: len(rows)
        for c, rows in zip(CRAWLS, followed(history["config"], history["plan"]), strict=True)
    }
    assert {k: len(v) for k, v in _observations(history["root"]).items()} == counts


def test_a_lot_whose_page_is_gone_is_closed_unknown_after_follow_days(tmp_path: Path) -> None:
    """A followed Catawiki lot the crawler may no longer fetch (robots.txt): it stays open in
    the database, then, follow_days after its end, becomes closed-unknown, never unsold."""
    start = datetime(2026, 3, 14, 6, tzinfo=UTC)
    config = DemoConfig(market_time=start)
    with DemoSite(config) as site, pytest.MonkeyPatch.context() as env:
        env.setenv("DEMO_SITE_URL", site.url)
        catawiki = load_sites(["catawiki"])[0].model_copy(update={"follow_days": 1})
        first = crawl_here(tmp_path, [catawiki], CrawlId(start.date(), time(6)))
        assert first["load"].lots_loaded > 0
        lots = table_rows(database_url_for(tmp_path), "lots")
        gone = min((r for r in lots if r["status"] == "open"), key=lambda r: r["end_time"])
        later = gone["end_time"] + timedelta(days=2)
        path = gone["url"].removeprefix(site.url)
        site.reconfigure(market_time=later, disallow=(path,))
        crawl_here(tmp_path, [catawiki], CrawlId(later.date(), time(later.hour, later.minute)))
    rows = {r["lot_key"]: r for r in table_rows(database_url_for(tmp_path), "lots")}
    assert (rows[gone["lot_key"]]["status"], rows[gone["lot_key"]]["sold"]) == (
        "closed-unknown", None,
    )  # fmt: skip
    kept = [o for o in table_rows(database_url_for(tmp_path), "observations")
            if o["lot_key"] == gone["lot_key"]]  # fmt: skip
    assert [o["status"] for o in kept] == ["open"]  # what the crawl saw, unchanged
