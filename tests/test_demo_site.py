"""Tests of the demo auction site: deterministic data, each house's markup, faults, counting.

The scraper tests trust this site as ground truth, so it must be reproducible, paginate every
lot exactly once, and fail exactly the way its configuration says.
"""

from __future__ import annotations

import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import Message
from urllib.parse import urljoin

import pytest
from parsel import Selector

from sites.demo.catalogue import HOUSES, Catalogue, DemoConfig, sale_size
from sites.demo.pages import NNBSP, format_date, render_lot, render_robots
from sites.demo.server import DemoSite, main, route

DAY = date(2026, 3, 14)

# Selectors a site definition would use for each house (also documents the markup).
NEXT_PAGE = {
    "harrow-finch": "a.next::attr(href)",
    "hotel-lumiere": "//a[contains(., 'Page suivante')]/@href",
    "brooklyn-gallery": "a[rel=next]::attr(href)",
}
LOT_FIELDS = {
    "harrow-finch": ("h1.lot-title", "dd.sale-date", "dd.estimate", "dd.price"),
    "hotel-lumiere": ("h1.titre-lot", "p.date-vente", "p.estimation", "p.adjudication"),
    "brooklyn-gallery": ("h1.lot-name", "time.sale-date", "div.estimate .value", "div.result"),
}


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def fetch(url: str) -> Response:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return Response(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, err.headers, err.read())


def select(selector: Selector, query: str) -> list[str]:
    found = selector.xpath(query) if query.startswith("/") else selector.css(query)
    return [" ".join(s.split()) for s in found.getall()]


def text_of(page: Selector, css: str) -> str:
    return "".join(page.css(css).xpath("string()").getall()).strip()


@pytest.fixture(scope="module")
def site() -> Iterator[DemoSite]:
    with DemoSite(DemoConfig()) as s:
        yield s


# -- catalogue --------------------------------------------------------------------------------


def test_same_seed_gives_same_lots_and_another_seed_differs() -> None:
    a, b, c = (
        Catalogue(DemoConfig(seed=7)),
        Catalogue(DemoConfig(seed=7)),
        Catalogue(DemoConfig(seed=8)),
    )
    for slug in HOUSES:
        assert a.lots(slug, DAY) == b.lots(slug, DAY)
        assert a.lots(slug, DAY) != c.lots(slug, DAY)


def test_sale_sizes_stay_within_a_quarter_of_the_configured_size() -> None:
    sizes = set()
    for lots_per_sale in (1, 4, 24):
        config = DemoConfig(lots_per_sale=lots_per_sale)
        for slug in HOUSES:
            for offset in range(30):
                n = sale_size(config, slug, DAY + timedelta(days=offset))
                assert max(1, 0.75 * lots_per_sale) <= n <= 1.25 * lots_per_sale
                if lots_per_sale == 24:
                    sizes.add(n)
    assert len(sizes) > 3  # it does vary


def test_lots_are_plausible_and_found_again_by_id() -> None:
    catalogue = Catalogue()
    lots = [lot for slug in HOUSES for lot in catalogue.lots(slug, DAY)]
    assert len({lot.lot_id for lot in lots}) == len(lots)
    for lot in lots:
        assert 200 <= lot.estimate_low < lot.estimate_high <= 50_000
        assert lot.estimate_low == int(lot.estimate_low)
        assert catalogue.lot(lot.house, lot.lot_id) == lot
        assert len(lot.image_names) == 2
    unsold = sum(lot.sold_price is None for lot in lots)
    assert 0 < unsold < len(lots) / 2
    assert any(not lot.title.isascii() or not lot.description.isascii() for lot in lots)
    assert catalogue.lot("harrow-finch", "hf-20261399-001") is None
    assert catalogue.lot("harrow-finch", "bg-20260314-001") is None
    assert catalogue.lot("harrow-finch", "hf-20260314-999") is None


def test_config_rejects_unknown_houses_and_bad_rates() -> None:
    with pytest.raises(ValueError, match="unknown house"):
        DemoConfig(unreachable=frozenset({"sothebys"}))
    with pytest.raises(ValueError, match="error_rate"):
        DemoConfig(error_rate=1.5)


def test_house_formats() -> None:
    assert format_date(HOUSES["harrow-finch"], DAY) == "14 March 2026"
    assert format_date(HOUSES["hotel-lumiere"], DAY) == "samedi 14 mars 2026"
    assert format_date(HOUSES["hotel-lumiere"], date(2026, 3, 1)) == "dimanche 1er mars 2026"
    assert format_date(HOUSES["brooklyn-gallery"], DAY) == "March 14, 2026"
    assert render_robots(2.5).endswith("Crawl-delay: 2.5\n")


# -- served pages -----------------------------------------------------------------------------


@pytest.mark.parametrize("slug", list(HOUSES))
def test_pagination_lists_every_lot_exactly_once(site: DemoSite, slug: str) -> None:
    expected = [lot.lot_id for lot in site.catalogue.lots(slug, DAY)]
    url: str | None = f"{site.url}/{slug}/auctions/{DAY.isoformat()}"
    seen: list[str] = []
    pages = 0
    while url:
        resp = fetch(url)
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
        page = Selector(text=resp.text)
        assert f"{len(expected)} lots" in resp.text
        hrefs = [h for h in page.css("a::attr(href)").getall() if "/lot/" in h]
        seen += [urljoin(url, h).rsplit("/", 1)[1] for h in hrefs]
        assert all(urljoin(url, h).startswith(f"{site.url}/{slug}/lot/") for h in hrefs)
        nxt = select(page, NEXT_PAGE[slug])
        url = urljoin(url, nxt[0]) if nxt else None
        pages += 1
    assert seen == expected
    assert pages == -(-len(expected) // site.config.page_size)


@pytest.mark.parametrize("slug", list(HOUSES))
def test_lot_page_shows_the_lot(site: DemoSite, slug: str) -> None:
    lots = site.catalogue.lots(slug, DAY)
    for lot in (lots[0], next(x for x in lots if x.sold_price is None)):
        resp = fetch(f"{site.url}/{slug}/lot/{lot.lot_id}")
        assert resp.status == 200
        assert '<meta charset="utf-8">' in resp.text
        page = Selector(text=resp.text)
        title, sale_date, estimate, result = (text_of(page, q) for q in LOT_FIELDS[slug])
        assert title == lot.title
        assert sale_date == format_date(HOUSES[slug], DAY)
        low = f"{int(lot.estimate_low):,}"
        if slug == "hotel-lumiere":
            low = low.replace(",", NNBSP)
        assert low in estimate
        if lot.sold_price is None:
            assert result in {"Unsold", "Invendu", "Passed"}
        else:
            assert result.startswith(("Sold for £", "Adjugé ", "Hammer price: $"))
        for src in page.css("img::attr(src)").getall():
            image = fetch(urljoin(f"{site.url}/{slug}/lot/{lot.lot_id}", src))
            assert image.status == 200
            assert image.headers["Content-Type"] == "image/png"


def test_images_are_valid_pngs(site: DemoSite) -> None:
    lot = site.catalogue.lots("harrow-finch", DAY)[0]
    data = fetch(f"{site.url}/images/harrow-finch/{lot.image_names[0]}").body
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (24, 24)
    (crc,) = struct.unpack(">I", data[29:33])
    assert crc == zlib.crc32(data[12:29])
    assert data.endswith(b"IEND\xaeB`\x82")
    assert data == site.catalogue.image_bytes(lot.image_names[0])
    assert data != site.catalogue.image_bytes(lot.image_names[1])


def test_robots_and_index(site: DemoSite) -> None:
    resp = fetch(f"{site.url}/robots.txt")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert resp.text == "User-agent: *\nDisallow: /admin/\n"
    index = fetch(site.url + "/").text
    assert all(f'href="/{slug}/auctions/' in index for slug in HOUSES)


@pytest.mark.parametrize(
    "path",
    [
        "/sothebys/auctions/2026-03-14",
        "/harrow-finch/auctions/2026-13-01",
        "/harrow-finch/auctions/20260314",
        "/harrow-finch/auctions/2026-03-14?page=99",
        "/harrow-finch/auctions/2026-03-14?page=0",
        "/harrow-finch/auctions/2026-03-14?page=two",
        "/harrow-finch/lot/hf-20260314-999",
        "/harrow-finch/lot/nonsense",
        "/images/harrow-finch/hf-20260314-001-9.png",
        "/admin/",
    ],
)
def test_unknown_paths_are_404(site: DemoSite, path: str) -> None:
    assert fetch(site.url + path).status == 404


def test_request_count(site: DemoSite) -> None:
    prefix = "/brooklyn-gallery/auctions/2026-01-02"
    before = site.request_count()
    fetch(site.url + prefix)
    fetch(site.url + prefix + "?page=2")
    assert site.request_count(prefix) == 2
    assert site.request_count() == before + 2
    assert site.requested_paths()[-1] == prefix + "?page=2"


# -- faults -----------------------------------------------------------------------------------


def test_error_rate_one_gives_500_but_robots_stays_up() -> None:
    with DemoSite(DemoConfig(error_rate=1.0)) as s:
        assert fetch(f"{s.url}/harrow-finch/auctions/2026-03-14").status == 500
        assert fetch(f"{s.url}/robots.txt").status == 200


def test_throttle_rate_one_gives_429_with_retry_after() -> None:
    with DemoSite(DemoConfig(throttle_rate=1.0, retry_after=3)) as s:
        resp = fetch(f"{s.url}/hotel-lumiere/auctions/2026-03-14")
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "3"


def test_faults_are_reproducible() -> None:
    def statuses() -> list[int]:
        with DemoSite(DemoConfig(error_rate=0.3, throttle_rate=0.3)) as s:
            return [fetch(f"{s.url}/hotel-lumiere/auctions/2026-03-14").status for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert {200, 429, 500} <= set(first)


def test_unreachable_house_answers_503() -> None:
    with DemoSite(DemoConfig(unreachable=frozenset({"brooklyn-gallery"}))) as s:
        lot = s.catalogue.lots("brooklyn-gallery", DAY)[0]
        assert fetch(f"{s.url}/brooklyn-gallery/auctions/2026-03-14").status == 503
        assert fetch(f"{s.url}/brooklyn-gallery/lot/{lot.lot_id}").status == 503
        assert fetch(f"{s.url}/images/brooklyn-gallery/{lot.image_names[0]}").status == 503
        assert fetch(f"{s.url}/harrow-finch/auctions/2026-03-14").status == 200


@pytest.mark.parametrize("slug", list(HOUSES))
def test_changed_layout_defeats_the_normal_selectors(slug: str) -> None:
    catalogue = Catalogue(DemoConfig(changed_layout=frozenset({slug})))
    lot = catalogue.lots(slug, DAY)[0]
    reply = route(catalogue, f"/{slug}/lot/{lot.lot_id}")
    changed = Selector(text=reply.body.decode())
    assert all(not changed.css(q) for q in LOT_FIELDS[slug])
    assert not changed.css("h1")
    assert Selector(text=render_lot(lot)).css(LOT_FIELDS[slug][0])
    listing = route(catalogue, f"/{slug}/auctions/{DAY.isoformat()}")
    assert listing.status == 200  # only lot pages change


def test_main_rejects_unknown_house(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--unreachable", "sothebys"])
    assert exc.value.code == 2
    assert "unknown house" in capsys.readouterr().err
