"""Keyword searches: the search section of a site file, and how result pages of several
queries merge into one set of lots (top N per query, stop rules, lots found by two spellings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sites.loader import SITES_DIR, SiteDefinition, SiteDefinitionError, load_site_file
from sites.search import Search
from tasks.search import SearchMerge, lot_identity

BASE = "https://www.ebay.example"
SEARCH: dict[str, Any] = {
    "url": "/sch/i.html?_nkw={query}&_pgn={page}",
    "queries": ["mambila", "mambilla", "chamba figure"],
    "max_results": 4,
    "max_pages": 3,
    "results": {
        "lot_links": {"css": "ul.srp-results li a.s-item__link::attr(href)"},
        "exclude": {"xpath": "//li[.//span[@class='s-item__sponsored']]//a/@href"},
    },
}


def _site(tmp_path: Path, **changes: Any) -> SiteDefinition:
    data = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    data.update(base_url=BASE, **changes)
    path = tmp_path / "harrow-finch.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_site_file(path)


def test_page_urls_encode_the_query_and_read_back(tmp_path: Path) -> None:
    search = Search.model_validate(SEARCH)
    url = search.page_url(BASE, "chamba figure", 2)
    assert url == f"{BASE}/sch/i.html?_nkw=chamba+figure&_pgn=2"
    assert search.query_of(BASE, url) == ("chamba figure", 2)
    hostile = search.page_url(BASE, "a&b=c/d#e", 1)
    assert search.query_of(BASE, hostile) == ("a&b=c/d#e", 1)
    assert search.query_of(BASE, f"{BASE}/itm/123") is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"url": "/sch/i.html?_nkw={query}"}, "has no {page}"),
        ({"url": "/s?q={query}&p={page}&x={other}"}, "only {query} and {page}"),
        ({"queries": []}, "at least 1 item"),
        ({"queries": ["mambila", " mambila "]}, "a query is given twice"),
        ({"queries": ["  "]}, "an empty query"),
        ({"results": {"lot_ids": {"json": "items[].id"}}}, "lot_ids needs lot_url"),
        ({"results": {}}, "exactly one of 'lot_links' or 'lot_ids'"),
        ({"max_results": 0}, "greater than 0"),
    ],
)
def test_a_bad_search_section_is_refused_naming_the_file_and_fix(
    tmp_path: Path, change: dict[str, Any], named: str
) -> None:
    with pytest.raises(SiteDefinitionError) as caught:
        _site(tmp_path, search={**SEARCH, **change})
    assert str(tmp_path / "harrow-finch.yaml") in str(caught.value)
    assert "search" in str(caught.value) and named in str(caught.value)


def test_a_site_found_by_search_only_needs_no_listing(tmp_path: Path) -> None:
    data = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    del data["listing"], data["start_url"]
    data.update(base_url=BASE, search=SEARCH)
    path = tmp_path / "harrow-finch.yaml"
    path.write_text(yaml.safe_dump(data))
    site = load_site_file(path)
    assert site.listing is None and site.start_url_for("2026-03-14") is None
    assert site.sale_url_for("2026-03-14") == BASE
    del data["search"]
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SiteDefinitionError, match="needs a way to find its lots"):
        load_site_file(path)


def _links(*ids: int, slug: str = "mask") -> list[str]:
    return [f"{BASE}/itm/{n}?hash=item{n}:g:x&{slug}" for n in ids]


def test_results_merge_across_pages_and_queries_top_n_each(tmp_path: Path) -> None:
    site = _site(tmp_path, search=SEARCH, lot_id={"url_regex": r"/itm/([0-9]+)"})
    merge = SearchMerge(site)
    # mambila: page 1 has 3 lots, page 2 repeats one and adds two; the top 4 are taken.
    assert merge.add("mambila", 1, _links(1, 2, 3)) == _links(1, 2, 3)
    assert merge.wants("mambila")
    assert merge.add("mambila", 2, _links(3, 4, 5)) == _links(4)
    assert not merge.wants("mambila")  # max_results reached
    # mambilla finds 2 and 6 under other tracking parameters: 2 is the same lot.
    assert merge.add("mambilla", 1, _links(2, 6, slug="other")) == _links(6, slug="other")
    assert merge.add("mambilla", 2, _links(2, 6)) == []  # a page adding nothing ends it
    assert not merge.wants("mambilla")
    # chamba figure: an empty first page.
    assert merge.add("chamba figure", 1, []) == []
    assert not merge.wants("chamba figure")
    assert merge.queries_of(f"{BASE}/itm/2?other=1") == ["mambila", "mambilla"]
    assert merge.queries_of(_links(5)[0]) == []  # beyond mambila's top 4
    assert merge.queries_of(_links(6)[0]) == ["mambilla"]
    assert merge.warnings == []


def test_a_query_cut_short_by_max_pages_is_a_warning(tmp_path: Path) -> None:
    site = _site(tmp_path, search={**SEARCH, "max_results": 100})
    merge = SearchMerge(site)
    for page in (1, 2, 3):
        merge.add("mambila", page, _links(page * 10, page * 10 + 1))
    assert not merge.wants("mambila")
    (warning,) = merge.warnings
    assert "search.max_pages (3)" in warning and "6 of its 100 results" in warning


def test_without_a_lot_id_rule_a_lot_is_its_url_without_fragment(tmp_path: Path) -> None:
    site = _site(tmp_path, search=SEARCH)
    assert lot_identity(site, f"{BASE}/itm/1#photos") == lot_identity(site, f"{BASE}/itm/1")
    assert lot_identity(site, f"{BASE}/itm/1?v=1") != lot_identity(site, f"{BASE}/itm/1?v=2")
