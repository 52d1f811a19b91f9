"""``auction-pipeline lot-history SITE LOT_ID`` and the per-seller counts (issue 14, part 6),
against four crawls of the demo eBay over three days (the follow tests' moments), made with
the pipeline's own steps: the table shows one line per crawl with the catalogue's bids as of
each crawl and the final price, ``--csv`` is the day's bag's ``lot_history`` rows of the lot,
a URL finds the lot too, and unknown sites, lots, missing or older databases are refused
with what to do and leave the data root as it was. Nothing here starts Prefect or Slurm.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import Cli
from crawling import crawl_here
from expected import FOLLOW_MOMENTS, follow_subjects, seller_counts

from sites.demo.catalogue import DemoConfig
from sites.demo.marketplaces import MarketCatalogue
from sites.demo.server import DemoSite
from sites.loader import load_sites
from tasks.archive import archive_day
from tasks.crawlid import CrawlId
from tasks.export import LOT_HISTORY_COLUMNS
from tasks.history import LotHistory, lot_history, render_history, seller_activity
from tasks.store import database_url_for, table_rows

SITE = "ebay"
CRAWLS = [CrawlId(m.date(), time(m.hour, m.minute)) for m in FOLLOW_MOMENTS]
FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def followed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Four crawls of the demo eBay, the demo's clock at each crawl's time; the last day
    archived (its bag's lot_history holds every crawl of its lots)."""
    root = tmp_path_factory.mktemp("lot-history")
    config = DemoConfig(market_time=FOLLOW_MOMENTS[0])
    with DemoSite(config) as demo, pytest.MonkeyPatch.context() as env:
        env.setenv("DEMO_SITE_URL", demo.url)
        sites = load_sites([SITE])
        for moment, crawl in zip(FOLLOW_MOMENTS, CRAWLS, strict=True):
            demo.reconfigure(market_time=moment)
            crawl_here(root, sites, crawl)
        bag = archive_day(CRAWLS[-1].day, str(root), database_url_for(root), None, [])
    yield {"root": root, "config": config, "subject": follow_subjects(config)[SITE], "bag": bag}


def _lot_history(cli: Cli, root: Path, *args: str) -> Any:
    return cli("lot-history", *args, "--data-root", str(root))


def test_the_table_shows_each_crawl_with_the_bids_as_of_it_and_the_final_price(
    followed: dict[str, Any], cli: Cli
) -> None:
    lot = followed["subject"]
    result = _lot_history(cli, followed["root"], SITE, lot.lot_id)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{SITE} {lot.lot_id}: {lot.title}"
    assert lines[2] == f"4 observations, {CRAWLS[0].id} to {CRAWLS[-1].id}; last status: sold"
    header, *rows = lines[4:]
    assert header.split()[:4] == ["crawl", "status", "bids", "current"]
    assert [row.split()[0] for row in rows] == [c.id for c in CRAWLS]
    catalogue = MarketCatalogue(followed["config"])
    for row, moment in zip(rows, FOLLOW_MOMENTS, strict=True):
        truth = catalogue.at(moment).lot(SITE, lot.lot_id)
        assert truth is not None
        shown = row.split()
        assert shown[1] == truth.status and int(shown[2]) == truth.bid_count, row
        assert f"{truth.price:,.2f}" in row, (row, truth.price)
        assert lot.seller.seller_id == shown[-1]
    sold = catalogue.at(FOLLOW_MOMENTS[-1]).lot(SITE, lot.lot_id)
    assert sold is not None and sold.status == "sold"
    assert rows[-1].split()[4] == f"{sold.price:,.2f}"  # the final price, in its own column
    bids = [int(row.split()[2]) for row in rows]
    assert bids == sorted(bids) and bids[0] < bids[-1]


def test_csv_is_the_bags_lot_history_of_the_lot_and_json_holds_the_same(
    followed: dict[str, Any], cli: Cli
) -> None:
    lot = followed["subject"]
    printed = _lot_history(cli, followed["root"], SITE, lot.lot_id, "--csv")
    assert printed.returncode == 0, printed.stderr
    bag_file = Path(followed["bag"].path) / "data" / "tables" / "lot_history.csv"
    bag_lines = bag_file.read_text().splitlines()
    mine = [line for line in bag_lines[1:] if line.startswith(f"{SITE},{lot.lot_id},")]
    assert printed.stdout.splitlines() == [bag_lines[0], *mine]
    assert len(mine) == len(CRAWLS)

    as_json = json.loads(_lot_history(cli, followed["root"], SITE, lot.lot_id, "--json").stdout)
    rows = list(csv.DictReader(io.StringIO(printed.stdout)))
    assert [r["crawl_id"] for r in as_json["rows"]] == [r["crawl_id"] for r in rows]
    assert as_json["seller_id"] == lot.seller.seller_id


def test_a_lot_is_found_by_its_page_url_too(followed: dict[str, Any], cli: Cli) -> None:
    lot = followed["subject"]
    stored = lot_history(database_url_for(followed["root"]), SITE, lot.lot_id)
    by_url = _lot_history(cli, followed["root"], SITE, stored.url)
    assert by_url.returncode == 0, by_url.stderr
    assert by_url.stdout == render_history(stored) + "\n"


def _state(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its digest: what a read must leave as it was."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_unknown_sites_and_lots_are_refused_naming_what_is_there(
    followed: dict[str, Any], cli: Cli
) -> None:
    root = followed["root"]
    before = _state(root)
    lot_id = followed["subject"].lot_id

    site = _lot_history(cli, root, "ebya", lot_id)
    assert site.returncode == 2 and site.stdout == ""
    assert "holds no lots of site 'ebya'; the sites it holds: ebay" in site.stderr

    part = lot_id[2:-2]
    partial = _lot_history(cli, root, SITE, part)
    assert partial.returncode == 2
    assert f"holds no lot {part!r} of site 'ebay'" in partial.stderr
    listed = partial.stderr.split("keys that contain it: ", 1)[1].split(")", 1)[0]
    assert lot_id in listed.split(", "), partial.stderr  # the key it is part of, named

    hostile = _lot_history(cli, root, SITE, "%_' OR 1=1 --")
    assert hostile.returncode == 2
    assert "its keys look like" in hostile.stderr  # LIKE wildcards escaped: no false match
    assert _state(root) == before


def test_no_database_is_refused_and_none_is_created(tmp_path: Path, cli: Cli) -> None:
    result = _lot_history(cli, tmp_path, SITE, "123")
    assert result.returncode == 2
    assert "no database at sqlite:///" in result.stderr and "auction-pipeline run" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_older_database_is_refused_not_upgraded_by_a_reader(tmp_path: Path, cli: Cli) -> None:
    old = FIXTURES / "release-0.1.sqlite"
    shutil.copy(old, tmp_path / "auction.sqlite")
    result = _lot_history(cli, tmp_path, "harrow-finch", "lot-1")
    assert result.returncode == 3, result.stderr
    assert "has schema revision 0001; this release reads 0003" in result.stderr
    assert "next `auction-pipeline run`" in result.stderr
    assert (tmp_path / "auction.sqlite").read_bytes() == old.read_bytes()


def test_seller_counts_match_the_catalogue(followed: dict[str, Any]) -> None:
    url = database_url_for(followed["root"])
    stored = {row["lot_key"] for row in table_rows(url, "lots") if row["site"] == SITE}
    truth = seller_counts(followed["config"], SITE, stored, FOLLOW_MOMENTS[-1])
    activity = seller_activity(url, SITE)
    counted = {row["seller_id"]: {k: row[k] for k in ("lots", "sold", "open")} for row in activity}
    assert counted == truth
    assert [row["lots"] for row in activity] == sorted((r["lots"] for r in activity), reverse=True)
    assert sum(row["sold"] for row in activity) > 0
    catalogue = MarketCatalogue(followed["config"]).at(FOLLOW_MOMENTS[-1])
    compared = 0
    for row in activity:
        everything = [catalogue.lot(SITE, key) for key in stored]
        mine = [lot for lot in everything if lot and lot.seller.seller_id == row["seller_id"]]
        assert row["name"] == mine[0].seller.name
        if row["reference_currency"] == mine[0].currency:  # converted only across currencies
            expected = sum((lot.price for lot in mine if lot.status == "sold"), Decimal(0))
            assert row["sold_total_ref"] == expected
            compared += 1
    assert compared > 0


def test_without_a_lot_the_longest_followed_lots_are_listed(
    followed: dict[str, Any], cli: Cli
) -> None:
    root = followed["root"]
    crawls = Counter(
        row["lot_key"]
        for row in table_rows(database_url_for(root), "observations")
        if row["site"] == SITE
    )
    listed = _lot_history(cli, root, SITE, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert 0 < len(rows) <= 20
    assert [(r["lot_key"], r["crawls"]) for r in rows] == sorted(
        crawls.items(), key=lambda item: (-item[1], item[0])
    )[: len(rows)]
    assert rows[0]["crawls"] == len(CRAWLS)
    table = _lot_history(cli, root, SITE).stdout.splitlines()
    assert table[0] == f"the {len(rows)} lots of {SITE} seen by the most crawls:"
    assert [line.split()[0] for line in table[3:]] == [r["lot_key"] for r in rows]


def test_a_hostile_title_cannot_reach_the_terminal_as_control_characters() -> None:
    history = LotHistory(
        site=SITE,
        lot_key="1\x1b]0;owned\x07",
        title="Mask\x1b[2J\x1b[31m red\r\nfake line",
        url="http://example.org/itm/1\x1b[0m",
        seller_id="s\x00",
        rows=[{spec.name: None for spec in LOT_HISTORY_COLUMNS} | {"crawl_id": "2026-03-14"}],
    )
    shown = render_history(history)
    assert not any(ch in shown for ch in "\x1b\x07\x00\r")
    assert shown.count("\n") == 5  # header, URL, summary, blank, heading, one row
    assert "Mask\\x1b[2J\\x1b[31m red\\r\\nfake line" in shown
