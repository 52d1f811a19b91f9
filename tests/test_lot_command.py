"""``auction-pipeline lot URL ... --site S`` (issue 13 part 8, "One lot on demand") against the
demo LiveAuctioneers-like marketplace: lots fetched into a fresh day and into a crawled one (the
crawl's WARC records kept byte for byte, the lot's row updated, never duplicated), off-site
URLs refused before any request, a 404 failing alone, one lot under two slugs fetched once, and
the exit codes. No Prefect, no Slurm: the command runs its steps in-process.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import Cli
from warcio.archiveiterator import ArchiveIterator

from flows.cli import main
from sites.demo.catalogue import DemoConfig
from sites.demo.marketplaces import QUERIES, MarketCatalogue, MarketLot
from sites.demo.server import DemoSite
from sites.loader import load_site_file
from tasks.archive import archive_day
from tasks.checksums import damage, digest_file, recorded_digest
from tasks.process import process_site
from tasks.runlock import day_lock
from tasks.scrape import scrape_site
from tasks.storage import DataRoot
from tasks.store import database_url_for, load_day, table_rows

DAY = date(2026, 3, 14)
DATA = "script[data-reactroot]::text"
SITE = "la-demo"


def _site_file(directory: Path, base_url: str) -> Path:
    """The demo LiveAuctioneers site file, shaped as tests/test_search_crawl.py's ``_la_site``
    (one query, its top five lots, so the crawl of the day is short)."""

    def item(key: str) -> dict[str, str]:
        return {"css": DATA, "json": f'item.byId."{{lot_id}}".{key}'}

    data = {
        "name": SITE,
        "house": "LiveAuctioneers (demo)",
        "base_url": base_url,
        "currency": "USD",
        "date_languages": ["en"],
        "lot_id": {"url_regex": r"/item/([0-9]+)"},
        "search": {
            "url": "/search/?keyword={query}&page={page}",
            "queries": [QUERIES[0]],
            "max_results": 5,
            "results": {
                "lot_ids": {"css": DATA, "json": "search.itemIds[]"},
                "lot_url": "/item/{lot_id}",
            },
        },
        "fields": {
            "lot_number": {"selector": item("lotNumber"), "parser": "int", "required": True},
            "title": {"selector": item("title"), "required": True},
            "sale_date": {"selector": item("publishDate"), "parser": "date", "required": True},
            "images": {
                "selector": {"css": "img[class*=StyledThumbnailImage]::attr(src)"},
                "many": True,
            },
        },
        "politeness": {"requests_per_second": 50},
        # The demo writes some lot numbers as "14A", which the record's integer refuses: a
        # crawl of the query's top five has one such lot.
        "checks": {"max_invalid_share": 0.5},
    }
    path = directory / f"{SITE}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _lot_command(
    capsys: pytest.CaptureFixture[str], site_file: Path, root: Path, *urls: str
) -> tuple[int, dict[str, Any]]:
    """Run ``auction-pipeline lot ... --json`` in-process: its exit code and its report."""
    capsys.readouterr()
    args = ["lot", *urls, "--site", str(site_file), "--date", DAY.isoformat()]
    code = main([*args, "--data-root", str(root), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _records(warc: Path) -> list[tuple[str, str, str]]:
    """(type, kind, URL) of every record of a WARC file, in file order."""
    with open(warc, "rb") as handle:
        return [
            (
                r.rec_type,
                r.rec_headers.get_header("X-Auction-Pipeline-Kind") or "",
                r.rec_headers.get_header("WARC-Target-URI") or "",
            )
            for r in ArchiveIterator(handle)
        ]


def _lot_paths(demo: DemoSite) -> list[str]:
    return [p for p in demo.requested_paths() if p.startswith("/liveauctioneers/item/")]


def _port(demo: DemoSite) -> int:
    return int(demo.url.rsplit(":", 1)[1])


def _a_lot() -> MarketLot:
    """A lot of the demo marketplace whose page validates."""
    return [lot for lot in MarketCatalogue().lots("liveauctioneers") if lot.lot_number.isdigit()][3]


@pytest.mark.timeout(120)
def test_a_lot_fetched_into_a_fresh_day_creates_its_warc_and_its_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lot = _a_lot()
    with DemoSite() as demo:
        base = demo.url
        site_file = _site_file(tmp_path, f"{base}/liveauctioneers")
        # The lot's bare id URL: the demo answers 301 to its slug, as the platform does.
        code, report = _lot_command(
            capsys, site_file, tmp_path, f"{base}/liveauctioneers/item/{lot.lot_id}"
        )
        assert not [p for p in demo.requested_paths() if "/search/" in p]  # no crawl
    assert code == 0, report
    [outcome] = report["lots"]
    assert (outcome["status"], outcome["lot_key"], outcome["title"]) == (
        "new",
        lot.lot_id,
        lot.title,
    )

    root = DataRoot(tmp_path)
    warc = root.warc_file(DAY, SITE)
    assert damage(warc) is None and recorded_digest(warc) is not None
    lot_pages = [
        url for kind_, kind, url in _records(warc) if kind_ == "response" and kind == "lot"
    ]
    assert lot_pages == [f"{base}/liveauctioneers/item/{lot.lot_id}", f"{base}{lot.path}"]
    url = database_url_for(tmp_path)
    [row] = table_rows(url, "lots")
    assert (row["lot_key"], row["title"], row["url"]) == (
        lot.lot_id,
        lot.title,
        f"{base}{lot.path}",
    )
    assert len(table_rows(url, "observations")) == 1
    images = root.image_manifest(DAY, SITE).read_text().splitlines()
    assert len(images) == len(lot.image_names)
    # A later `run` of the day would reuse this backup: its summary says so.
    assert "auction-pipeline lot" in root.failures_file(DAY, SITE).read_text()


@pytest.mark.timeout(180)
def test_a_lot_fetched_after_the_days_crawl_keeps_the_crawls_records_and_updates_its_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = DataRoot(tmp_path)
    url = database_url_for(tmp_path)
    with DemoSite() as demo:
        port = _port(demo)
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        site = load_site_file(site_file)
        crawled = scrape_site(site, DAY, str(tmp_path))
        load_day(DAY, [site], [process_site(site, DAY, str(tmp_path)).processed_file], url)
    bag = archive_day(DAY, str(tmp_path), url, None, [])
    warc = root.warc_file(DAY, SITE)
    old = warc.read_bytes()
    before = {row["lot_key"]: row for row in table_rows(url, "lots")}
    assert crawled.lot_pages == 5 and len(before) >= 3  # a "14A" lot is held back
    lot_key = sorted(before)[2]
    lot = MarketCatalogue(DemoConfig(renamed_slugs=frozenset({lot_key}))).lot(
        "liveauctioneers", lot_key
    )
    assert lot is not None and lot.path not in before[lot_key]["url"]

    # The same site, later: the lot is now under a new slug (same id).
    with DemoSite(DemoConfig(renamed_slugs=frozenset({lot_key})), port=port) as later:
        new_url = f"{later.url}{lot.path}"
        code, report = _lot_command(capsys, site_file, tmp_path, new_url)
        assert _lot_paths(later) == [lot.path]
        assert not [p for p in later.requested_paths() if "/search/" in p]
    assert code == 0, report
    assert [(o["status"], o["lot_key"]) for o in report["lots"]] == [("updated", lot_key)]

    # Every record of the crawl's WARC is still there, byte for byte, then the new ones.
    new = warc.read_bytes()
    assert new.startswith(old) and len(new) > len(old)
    assert recorded_digest(warc) == hashlib.sha256(new).hexdigest() and damage(warc) is None
    records = _records(warc)
    assert records[0][0] == "warcinfo" and ("warcinfo", "", "") in records[1:]
    assert [r for r in records if r[1] == "lot" and r[2] == new_url] == [
        ("response", "lot", new_url),
        ("request", "lot", new_url),
    ]
    # One row and one observation of the lot for the day: the later page's.
    after = {row["lot_key"]: row for row in table_rows(url, "lots")}
    assert sorted(after) == sorted(before)
    assert after[lot_key]["url"] == new_url and after[lot_key]["title"] == lot.title
    observed = [r for r in table_rows(url, "observations") if r["lot_key"] == lot_key]
    assert [(r["crawl_date"], r["url"]) for r in observed] == [(DAY, new_url)]
    processed = root.processed_file(DAY, SITE).read_text().splitlines()
    assert sorted(json.loads(line)["lot_key"] for line in processed) == sorted(before)
    # The day's bag was rebuilt with the new WARC; the previous bag, with the old one, kept.
    assert report["archive"] == bag.path
    assert (Path(bag.path) / "data" / "warc" / warc.name).read_bytes() == new
    kept = Path(report["superseded_archive"]) / "data" / "warc" / warc.name
    assert kept.read_bytes() == old


@pytest.mark.timeout(180)
def test_a_later_page_that_does_not_validate_leaves_the_crawls_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = database_url_for(tmp_path)
    with DemoSite() as demo:
        port = _port(demo)
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        site = load_site_file(site_file)
        scrape_site(site, DAY, str(tmp_path))
        load_day(DAY, [site], [process_site(site, DAY, str(tmp_path)).processed_file], url)
    before = {row["lot_key"]: row for row in table_rows(url, "lots")}
    lot_key = sorted(before)[0]
    with DemoSite(DemoConfig(renamed_json_key=frozenset({"liveauctioneers"})), port=port) as later:
        page = before[lot_key]["url"]
        code, report = _lot_command(capsys, site_file, tmp_path, page)
        assert len(_lot_paths(later)) == 1
    assert code == 1
    [outcome] = report["lots"]
    assert outcome["status"] == "failed" and "does not validate" in outcome["error"]
    assert "title" in outcome["error"]  # the field the renamed key took away
    assert table_rows(url, "lots") == list(before.values())
    quarantine = DataRoot(tmp_path).quarantine_file(DAY, SITE).read_text().splitlines()
    held = {row["url"]: row["error"] for row in map(json.loads, quarantine)}
    assert "the earlier page is kept" in held[page]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "bad",
    [
        "http://example.org/liveauctioneers/item/1",
        "ftp://127.0.0.1/liveauctioneers/item/1",
        "/item/1",
    ],
)
def test_an_off_site_url_is_refused_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    lot = _a_lot()
    with DemoSite() as demo:
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        capsys.readouterr()
        code = main(
            ["lot", f"{demo.url}{lot.path}", bad, "--site", str(site_file), "--data-root",
             str(tmp_path / "data"), "--date", DAY.isoformat()]
        )  # fmt: skip
        assert demo.request_count() == 0
    assert code == 2
    error = capsys.readouterr().err
    assert bad in error and "127.0.0.1" in error and "nothing was fetched" in error
    assert not (tmp_path / "data" / "warc").exists()


@pytest.mark.timeout(120)
def test_a_404_fails_alone_while_the_other_lot_is_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lot = _a_lot()
    with DemoSite() as demo:
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        missing = f"{demo.url}/liveauctioneers/item/999999999_gone"
        code, report = _lot_command(capsys, site_file, tmp_path, missing, f"{demo.url}{lot.path}")
    assert code == 1
    gone, stored = report["lots"]
    assert gone["status"] == "failed" and "HTTP 404" in gone["error"]
    assert (stored["status"], stored["lot_key"]) == ("new", lot.lot_id)
    assert report["state"] == "FAILED" and not report["errors"]
    url = database_url_for(tmp_path)
    assert [row["lot_key"] for row in table_rows(url, "lots")] == [lot.lot_id]
    warc = DataRoot(tmp_path).warc_file(DAY, SITE)
    assert ("response", "lot", missing) in _records(warc)  # every exchange is in the backup


@pytest.mark.timeout(120)
def test_one_lot_under_two_slugs_is_fetched_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lot = _a_lot()
    with DemoSite() as demo:
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        canonical = f"{demo.url}{lot.path}"
        old_slug = f"{demo.url}/liveauctioneers/item/{lot.lot_id}_an-old-title"
        code, report = _lot_command(capsys, site_file, tmp_path, canonical, old_slug, canonical)
        assert _lot_paths(demo) == [lot.path]
    assert code == 0, report
    assert [(o["status"], o["lot_key"]) for o in report["lots"]] == [("new", lot.lot_id)] * 3
    url = database_url_for(tmp_path)
    assert len(table_rows(url, "lots")) == 1 and len(table_rows(url, "observations")) == 1


@pytest.mark.timeout(120)
def test_a_busy_day_and_a_damaged_backup_are_refused_with_exit_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli: Cli
) -> None:
    lot = _a_lot()
    with DemoSite() as demo:
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        args = ["lot", f"{demo.url}{lot.path}", "--site", str(site_file)]
        args += ["--data-root", str(tmp_path), "--date", DAY.isoformat()]
        with day_lock(tmp_path, DAY, "a run of the day"):  # another process: the CLI's
            busy = cli(*args)
        assert busy.returncode == 3 and "busy" in busy.stderr and "a run of the day" in busy.stderr
        assert demo.request_count() == 0

        assert main(args) == 0
        warc = DataRoot(tmp_path).warc_file(DAY, SITE)
        stored = warc.read_bytes()
        damaged = bytearray(stored)
        damaged[len(damaged) // 2] ^= 0xFF
        warc.write_bytes(bytes(damaged))
        requests = demo.request_count()
        capsys.readouterr()
        assert main(args) == 3
        assert demo.request_count() == requests
    error = capsys.readouterr().err
    assert "damaged" in error and str(warc) in error
    assert warc.read_bytes() == bytes(damaged)  # left as it was, for whoever restores it


@pytest.mark.timeout(120)
def test_when_no_lot_page_comes_the_days_backup_is_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lot = _a_lot()
    root = DataRoot(tmp_path)
    warc = root.warc_file(DAY, SITE)
    with DemoSite() as demo:
        site_file = _site_file(tmp_path, f"{demo.url}/liveauctioneers")
        gone = f"{demo.url}/liveauctioneers/item/999999999"
        code, report = _lot_command(capsys, site_file, tmp_path, gone)
        assert code == 1 and report["lots"][0]["status"] == "failed"
        assert not warc.exists()  # a fresh day gets no backup that would pass for a crawl
        assert warc.with_name(warc.name + ".failed").exists()  # what the site said, kept

        assert _lot_command(capsys, site_file, tmp_path, f"{demo.url}{lot.path}")[0] == 0
        stored, sidecar = warc.read_bytes(), digest_file(warc).read_bytes()
        code, report = _lot_command(capsys, site_file, tmp_path, gone)
    assert code == 1 and "HTTP 404" in report["lots"][0]["error"]
    assert warc.read_bytes() == stored and digest_file(warc).read_bytes() == sidecar
    assert not list(warc.parent.glob(".*partial"))
