"""Follow-up resources per lot: a bidding API from a template over the lot id (the demo
Catawiki-like marketplace) and a description behind an iframe (the demo eBay-like one),
fetched politely into the WARC beside the lot page and read back from there.

Steps called directly (no Prefect, no Slurm), with site files written here.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from sites.demo.marketplaces import MarketCatalogue
from sites.demo.server import DemoSite
from sites.loader import SITES_DIR, SiteDefinitionError, load_site_file
from tasks.process import process_site
from tasks.scrape import scrape_site
from tasks.storage import DataRoot
from tasks.warc import read_responses

DAY = date(2026, 3, 14)
PROPS = "div.lot-details-page-wrapper::attr(data-props)"


def _catawiki(base_url: str) -> dict[str, Any]:
    return {
        "name": "cw-demo",
        "house": "Catawiki (demo)",
        "base_url": base_url,
        "currency": "EUR",
        "date_languages": ["en"],
        "decimal_separator": ".",
        "lot_id": {"url_regex": r"/l/([0-9]+)"},
        "content_types": {"search": ["application/json"], "bidding": ["application/json"]},
        "search": {
            "url": "/buyer/api/v1/search?q={query}&page={page}",
            "queries": ["mambila"],
            "max_results": 6,
            "results": {"lot_ids": {"json": "lots[].id"}, "lot_url": "/l/{lot_id}"},
        },
        "follow": {"bidding": {"url": "/buyer/api/v2/lots/{lot_id}/bidding?currency_code=EUR"}},
        "fields": {
            "title": {"selector": {"css": PROPS, "json": "lotTitle"}, "required": True},
            "sale_date": {
                "selector": {"json": "bidding.bidding_end_time"},
                "from": "bidding",
                "parser": "timestamp",
            },
            "current_bid": {
                "selector": {"json": "bidding.current_bid_amount"},
                "from": "bidding",
                "parser": "price",
            },
        },
        "politeness": {"requests_per_second": 50},
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("follow", "field_from", "named"),
    [
        ({"bidding": {"url": "/api/lots/bidding"}}, "bidding", "has no {lot_id}"),
        ({"bidding": {}}, "bidding", "exactly one of 'url'"),
        ({"lot": {"url": "/x/{lot_id}"}}, "lot", "a follow-up needs a name of its own"),
        ({"bidding": {"url": "/x/{lot_id}"}}, "bids", "'bids' names no follow-up"),
    ],
)
def test_a_bad_follow_up_is_refused_naming_the_file_and_fix(
    tmp_path: Path, follow: dict[str, Any], field_from: str, named: str
) -> None:
    data = _catawiki("https://www.catawiki.example")
    data["follow"] = follow
    data["fields"]["current_bid"]["from"] = field_from
    data["fields"]["sale_date"]["from"] = field_from
    path = _write(tmp_path, data)
    with pytest.raises(SiteDefinitionError) as caught:
        load_site_file(path)
    assert str(path) in str(caught.value) and named in str(caught.value)


@pytest.mark.timeout(120)
def test_a_bidding_api_per_lot_is_fetched_into_the_warc_and_read_back(tmp_path: Path) -> None:
    catalogue = MarketCatalogue()
    with DemoSite() as demo:
        site = load_site_file(_write(tmp_path, _catawiki(f"{demo.url}/catawiki")))
        report = scrape_site(site, DAY, str(tmp_path))
        bidding_requests = [p for p in demo.requested_paths() if "/bidding" in p]
        process_site(site, DAY, str(tmp_path))
        sent = demo.request_count()
        first = DataRoot(tmp_path).processed_file(DAY, site.name).read_bytes()
        process_site(site, DAY, str(tmp_path))  # as reprocess: from the WARC alone
        assert demo.request_count() == sent
    assert DataRoot(tmp_path).processed_file(DAY, site.name).read_bytes() == first
    expected = [lot.lot_id for lot in catalogue.search("catawiki", "mambila")[:6]]
    assert report.lot_pages == len(expected) and len(bidding_requests) == len(expected)
    warc = DataRoot(tmp_path).warc_file(DAY, site.name)
    kinds = [page.kind for page in read_responses(warc)]
    assert kinds.count("bidding") == len(expected)
    rows = [json.loads(line) for line in first.decode().splitlines()]
    assert sorted(row["lot_key"] for row in rows) == sorted(expected)
    for row in rows:
        lot = catalogue.lot("catawiki", row["lot_key"])
        assert lot is not None and Decimal(row["current_bid"]) == lot.price
        assert row["sale_date"] == lot.end_time.date().isoformat()
        assert row["found_by"] == ["mambila"]


@pytest.mark.timeout(120)
def test_a_description_behind_an_iframe_is_a_link_follow_up(tmp_path: Path) -> None:
    data = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    catalogue = MarketCatalogue()
    (lot,) = [x for x in catalogue.lots("ebay") if not x.promoted][:1]
    with DemoSite() as demo:
        data.update(
            name="eb-demo",
            base_url=f"{demo.url}/ebay",
            follow={"description": {"link": {"css": "div#desc_div iframe::attr(src)"}}},
        )
        data["fields"]["description"] = {
            "selector": {"css": "div#ds_div"},
            "from": "description",
        }
        site = load_site_file(_write(tmp_path, data))
        import httpx

        from tasks.chains import page_of
        from tasks.extract import extract_lot, follow_up_urls

        url = f"{demo.url}/ebay/itm/{lot.lot_id}"
        page_response = httpx.get(url)
        page = page_of(page_response.content, page_response.headers["content-type"])
        (link,) = follow_up_urls(site, page, url, extract_lot(site, page, url)).values()
        description = httpx.get(link)
        resources = {
            "description": page_of(description.content, description.headers["content-type"])
        }
        raw = extract_lot(site, page, url, resources=resources)
    assert "ViewItemDescV4" in link and lot.lot_id in link
    assert raw["description"] and lot.description[:40] in str(raw["description"])
    assert extract_lot(site, page, url)["description"] is None  # not fetched: missing
