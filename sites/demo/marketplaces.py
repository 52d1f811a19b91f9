"""The demo marketplaces' data: eBay-, LiveAuctioneers- and Catawiki-like lots and searches.

The research group finds lots on marketplaces by keyword search with spelling variants
("mambila", "mambilla"), so the demo needs lots that match one spelling, the other, both, a
third query ("chamba") or none, over several result pages. Everything here is pure and depends
only on the configuration (seed, page size, knobs): the server renders pages from it and the
tests compare what a crawl stored against it, e.g. ``MarketCatalogue().search("ebay",
"mambila")`` is the organic result order and ``lot.price`` the current bid a page shows.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sites.demo.catalogue import MARKETPLACES, DemoConfig
from sites.demo.sellers import SELLERS, Seller, seller_order, slugify

QUERIES: tuple[str, ...] = ("mambila", "mambilla", "chamba")
"""The queries the demo site files search for; each has at least two result pages by default."""

LOT_PATHS: dict[str, str] = {
    "ebay": "/ebay/itm/{slug}/{lot_id}",
    "liveauctioneers": "/liveauctioneers/item/{lot_id}_{slug}",
    "catawiki": "/catawiki/l/{lot_id}-{slug}",
}
"""Canonical lot URL path per marketplace (the platform's own pattern under a path prefix)."""

RENAMED_KEYS: dict[str, tuple[str, str]] = {
    "ebay": ("bidPriceDouble", "currentBidDouble"),  # in the $rwidgets data of a lot page
    "liveauctioneers": ("title", "lotTitle"),  # in window.__data's item.byId objects
    "catawiki": ("lotTitle", "title"),  # in the lot page's data-props JSON
}
"""The JSON key each marketplace renames under ``DemoConfig.renamed_json_key`` (old, new)."""

_ID_RANGES = {  # disjoint lengths, so a bare id names its marketplace
    "ebay": (100_000_000_000, 400_000_000_000),
    "liveauctioneers": (100_000_000, 200_000_000),
    "catawiki": (40_000_000, 60_000_000),
}
_BASE_TIME = datetime(2026, 3, 14, 18, 0, tzinfo=UTC)  # all lots' times lie around it


@dataclass(frozen=True)
class MarketLot:
    """One marketplace lot as the demo knows it: the truth a crawl's output is checked against.

    ``price`` is the current bid a page shows (eBay: the starting price while nobody has bid),
    or the final price once ``closed``; amounts are in ``currency``.
    """

    marketplace: str
    lot_id: str
    slug: str
    title: str
    subtitle: str
    description: str
    condition: str
    culture: str
    object_name: str
    material: str
    country: str
    height_cm: Decimal
    currency: str
    price: Decimal
    starting_price: Decimal
    buy_now_price: Decimal | None
    bid_count: int
    estimate_low: Decimal | None
    estimate_high: Decimal | None
    closed: bool
    sold: bool
    reserve_price_met: bool
    start_time: datetime
    end_time: datetime
    seller: Seller
    sale_id: str  # LiveAuctioneers catalog id, Catawiki auction id, "" on eBay
    lot_number: str
    image_names: tuple[str, ...]
    promoted: bool  # eBay: shown only in sponsored result slots, never as an organic result

    @property
    def path(self) -> str:
        """The lot page's canonical path on the demo server, e.g. ``/catawiki/l/4512-mask``."""
        return LOT_PATHS[self.marketplace].format(slug=self.slug, lot_id=self.lot_id)

    @property
    def search_text(self) -> str:
        """What a keyword search looks in: title, subtitle and description."""
        return f"{self.title} {self.subtitle} {self.description}"


# (object, material, country): objects the Mambila, the Chamba and their neighbours made.
_MAMBILA_OBJECTS = (
    ("ancestor figure (tadep)", "wood with red and white pigment", "Cameroon"),
    ("suaga mask", "wood, pigments and raffia", "Cameroon"),
    ("seated figure", "terracotta", "Nigeria"),
    ("spirit figure", "wood and pith", "Cameroon"),
    ("helmet mask", "wood and kaolin", "Cameroon"),
    ("ritual pot", "fired clay", "Nigeria"),
    ("slit drum", "hardwood", "Cameroon"),
    ("standing male figure", "wood with an encrusted patina", "Nigeria"),
)
_CHAMBA_OBJECTS = (
    ("buffalo mask (nam gbalang)", "wood and pigment", "Nigeria"),
    ("standing pair figure", "wood", "Nigeria"),
    ("horizontal headdress", "wood and cotton cloth", "Nigeria"),
    ("female figure", "wood with a dark patina", "Cameroon"),
    ("iron currency bar", "forged iron", "Nigeria"),
)
# (culture, object, material, country): lots none of the demo queries finds.
_OTHER_OBJECTS = (
    ("Baule", "portrait mask", "wood and kaolin", "Côte d'Ivoire"),
    ("Yoruba", "ibeji figure", "wood, glass beads and camwood", "Nigeria"),
    ("Kuba", "raffia textile", "raffia cut-pile", "DR Congo"),
    ("Fang", "reliquary head", "wood and brass", "Gabon"),
    ("Dogon", "granary door", "weathered wood", "Mali"),
    ("Senufo", "heddle pulley", "carved wood", "Côte d'Ivoire"),
    ("Asante", "kente cloth", "silk and cotton", "Ghana"),
    ("Bamileke", "beaded stool", "wood, cloth and beads", "Cameroon"),
    ("Bamana", "chiwara headdress", "wood and iron", "Mali"),
    ("Ndebele", "beaded apron (ijogolo)", "glass beads on hide", "South Africa"),
    ("Makonde", "helmet mask", "wood, human hair and wax", "Tanzania"),
    ("Zulu", "headrest", "wood", "South Africa"),
)
_CONDITIONS = (
    "Fine aged patina; minor losses to the base.",
    "Old repair to one side, otherwise good condition.",
    "Encrusted surface with traces of ritual use.",
    "Age cracks consistent with use; stable.",
)
_PROVENANCES = (
    "collected in situ c. 1930; thence by descent",
    "Galerie Mbëlé, Paris; private collection, Brussels, acquired in 1962",
    "collection of Hélène Dufresne, Genève, acquired before 1970",
    "estate of Søren Åkesson, København",
)
_EBAY_PREFIXES = ("Antique", "Old", "Fine", "Vintage", "Rare")
_AGES = ("Early 20th C.", "Mid 20th C.", "Late 19th C.")
_COUNTRY_CODES = {
    "Cameroon": "CM", "Nigeria": "NG", "Côte d'Ivoire": "CI", "DR Congo": "CD", "Gabon": "GA",
    "Mali": "ML", "Ghana": "GH", "South Africa": "ZA", "Tanzania": "TZ",
}  # fmt: skip


# How many lots of each kind a marketplace has: (kind, low, high). "both" lots carry one
# spelling in the title and the other in the description; "promoted" ones are eBay's
# sponsored results.
_GROUPS = (
    ("mambila", 6, 8),
    ("mambilla", 5, 7),
    ("both", 4, 5),
    ("chamba", 9, 12),
    ("other", 10, 14),
)
_PROMOTED = 4


def words(text: str) -> set[str]:
    """The case-folded words of ``text``: what a keyword must equal to match."""
    return {w.casefold() for w in re.findall(r"\w+", text)}


def matches(lot: MarketLot, query: str) -> bool:
    """Whether every word of ``query`` is a word of the lot's title, subtitle or description."""
    wanted = words(query)
    return bool(wanted) and wanted <= words(lot.search_text)


class MarketCatalogue:
    """All lots of the three demo marketplaces and what each search returns, from the config."""

    def __init__(self, config: DemoConfig | None = None) -> None:
        """Draw every marketplace's lots for ``config``; reject renamed slugs of unknown lots."""
        self.config = config or DemoConfig()
        self._lots: dict[str, dict[str, MarketLot]] = {
            name: {lot.lot_id: lot for lot in _draw_lots(self.config, name)}
            for name in MARKETPLACES
        }
        known = {lot_id for lots in self._lots.values() for lot_id in lots}
        unknown = sorted(self.config.renamed_slugs - known)
        if unknown:
            examples = ", ".join(sorted(self._lots["catawiki"])[:3])
            raise ValueError(
                f"renamed_slugs names lot id(s) {unknown} that no demo marketplace has with "
                f"seed {self.config.seed}; use ids from MarketCatalogue(config).lots(...), "
                f"e.g. {examples}"
            )
        self._images = {
            (lot.marketplace, name): lot
            for lots in self._lots.values()
            for lot in lots.values()
            for name in lot.image_names
        }

    def lots(self, marketplace: str) -> list[MarketLot]:
        """Every lot of ``marketplace`` (promoted ones included), in lot-id order."""
        lots = self._lots[self._known(marketplace)]
        return [lots[key] for key in sorted(lots)]

    def lot(self, marketplace: str, lot_id: str) -> MarketLot | None:
        """The lot with this platform id on ``marketplace``, or None."""
        return self._lots[self._known(marketplace)].get(lot_id)

    def lot_for_image(self, marketplace: str, name: str) -> MarketLot | None:
        """The lot on ``marketplace`` that shows the image called ``name``, or None."""
        return self._images.get((marketplace, name))

    def sellers(self, marketplace: str) -> list[Seller]:
        """The sellers with at least one lot on ``marketplace``, in id order (numbers as numbers).

        eBay's promoted lots count: their pages link their sellers' profiles like any other.
        A seller of the platform without lots has no profile page (it answers 404).
        """
        found = {lot.seller.seller_id: lot.seller for lot in self.lots(marketplace)}
        return sorted(found.values(), key=seller_order)

    def seller(self, marketplace: str, seller_id: str) -> Seller | None:
        """The seller with this id (eBay: user name) among ``sellers(marketplace)``, or None."""
        return next((s for s in self.sellers(marketplace) if s.seller_id == seller_id), None)

    def search(self, marketplace: str, query: str) -> list[MarketLot]:
        """The organic results of ``query`` in the platform's "best match" order (seeded)."""
        found = [
            lot
            for lot in self._lots[self._known(marketplace)].values()
            if not lot.promoted and matches(lot, query)
        ]
        norm = " ".join(sorted(words(query)))
        return sorted(found, key=lambda lot: _digest(self.config, marketplace, norm, lot.lot_id))

    def page_count(self, marketplace: str, query: str) -> int:
        """How many result pages ``query`` fills (0 when nothing matches)."""
        return math.ceil(len(self.search(marketplace, query)) / self.config.search_page_size)

    def results_page(self, marketplace: str, query: str, page: int) -> list[MarketLot]:
        """Organic results on page ``page`` (from 1); empty past the last page."""
        size = self.config.search_page_size
        return self.search(marketplace, query)[(page - 1) * size : page * size]

    def sponsored(self, query: str, page: int) -> list[tuple[int, MarketLot]]:
        """eBay's sponsored results on a result page: (position among the items, lot).

        Two per page that has organic results, drawn from the promoted lots, which match no
        demo query: a crawl that stores one has failed to leave sponsored results out.
        """
        organic = self.results_page("ebay", query, page)
        promoted = [lot for lot in self.lots("ebay") if lot.promoted]
        if not organic or not promoted:
            return []
        rng = random.Random(f"demo-market/{self.config.seed}/ebay/sponsored/{query}/{page}")
        chosen = rng.sample(promoted, min(2, len(promoted)))
        return [(0, chosen[0]), *((min(4, len(organic)), lot) for lot in chosen[1:])]

    def related(self, lot: MarketLot, count: int = 8) -> list[MarketLot]:
        """Other lots a lot page shows ("similar items", "more from this seller"), seeded."""
        others = [x for x in self.lots(lot.marketplace) if x != lot and not x.promoted]
        others.sort(  # the same seller's lots first
            key=lambda x: (x.seller != lot.seller, _digest(self.config, lot.lot_id, x.lot_id))
        )
        return others[:count]

    def _known(self, marketplace: str) -> str:
        if marketplace not in self._lots:
            raise KeyError(f"unknown marketplace {marketplace!r}; known: {', '.join(MARKETPLACES)}")
        return marketplace


@functools.lru_cache(maxsize=16)
def market_catalogue(config: DemoConfig) -> MarketCatalogue:
    """The (immutable) catalogue for ``config``, built once per configuration."""
    return MarketCatalogue(config)


def _digest(config: DemoConfig, *parts: str) -> str:
    return hashlib.sha256("/".join((str(config.seed), *parts)).encode()).hexdigest()


def _draw_lots(config: DemoConfig, marketplace: str) -> list[MarketLot]:
    """Every lot of one marketplace, drawn in a fixed order from one seeded generator."""
    rng = random.Random(f"demo-market/{config.seed}/{marketplace}/lots")
    kinds = [kind for kind, low, high in _GROUPS for _ in range(rng.randint(low, high))]
    if marketplace == "ebay":
        kinds += ["promoted"] * _PROMOTED
    low, high = _ID_RANGES[marketplace]
    ids: list[int] = []
    while len(ids) < len(kinds):
        candidate = rng.randrange(low, high)
        if candidate not in ids:
            ids.append(candidate)
    return [
        _draw_lot(config, marketplace, kind, str(lot_id), number, rng)
        for number, (kind, lot_id) in enumerate(zip(kinds, ids, strict=True), start=1)
    ]


def _subject(kind: str, rng: random.Random) -> tuple[str, str, str, str, str]:
    """(culture as titled, culture's other spelling or "", object, material, country)."""
    if kind in ("mambila", "mambilla", "both"):
        obj, material, country = rng.choice(_MAMBILA_OBJECTS)
        spelling = {"mambila": "Mambila", "mambilla": "Mambilla"}.get(kind)
        if spelling is None:
            spelling = rng.choice(("Mambila", "Mambilla"))
            other = "Mambilla" if spelling == "Mambila" else "Mambila"
            return spelling, other, obj, material, country
        return spelling, "", obj, material, country
    if kind == "chamba":
        obj, material, country = rng.choice(_CHAMBA_OBJECTS)
        return "Chamba", "", obj, material, country
    culture, obj, material, country = rng.choice(_OTHER_OBJECTS)
    return culture, "", obj, material, country


def _titles(marketplace: str, culture: str, obj: str, material: str, country: str,
            rng: random.Random) -> tuple[str, str]:  # fmt: skip
    """(title, subtitle) in the platform's style: eBay stuffs keywords, Catawiki uses dashes."""
    if marketplace == "ebay":
        prefix = rng.choice(_EBAY_PREFIXES)
        return f"{prefix} {culture.upper()} {obj.title()} {country} African Tribal Art", ""
    if marketplace == "catawiki":
        head = material.split(",")[0].split(" with ")[0].split(" and ")[0]
        return f"{obj[0].upper()}{obj[1:]} - {head.capitalize()} - {culture} - {country}", (
            "No reserve price" if rng.random() < 0.5 else "With certificate of authenticity"
        )
    return f"{culture} {obj[0].upper()}{obj[1:]}, {country}, {rng.choice(_AGES)}", ""


def _amounts(marketplace: str, rng: random.Random) -> tuple[Decimal, Decimal, int]:
    """(starting price, current price, bid count); LiveAuctioneers and Catawiki lots have bids."""
    if marketplace == "ebay":
        start = Decimal(rng.choice((49, 75, 99, 120, 150, 250, 395, 600))) + Decimal("0.99")
        bids = rng.choice((0, 0, 1, 2, 3, 5, 8, 13))
        raised = start * Decimal(1 + 0.12 * bids * rng.uniform(0.6, 1.4))
        return start, raised.quantize(Decimal("0.5")) if bids else start, bids
    start = Decimal(1 if marketplace == "catawiki" else rng.choice((50, 100, 200, 400)))
    bids = rng.randint(1, 24)
    step = Decimal(rng.choice((10, 25, 50)))
    return start, start + step * bids, bids


def _draw_lot(config: DemoConfig, marketplace: str, kind: str, lot_id: str, number: int,
              rng: random.Random) -> MarketLot:  # fmt: skip
    """One lot; the caller draws lots in a fixed order so each is reproducible."""
    culture, other, obj, material, country = _subject(kind, rng)
    title, subtitle = _titles(marketplace, culture, obj, material, country, rng)
    condition = rng.choice(_CONDITIONS)
    height = Decimal(rng.randint(80, 900)) / 10
    also = f" The {culture} are also written {other} in older literature." if other else ""
    description = (
        f"{obj[0].upper()}{obj[1:]}, {culture} people, {country}, in {material}.{also} "
        f"{condition} Height {height} cm. Provenance: {rng.choice(_PROVENANCES)}."
    )
    seller = rng.choice(SELLERS[marketplace])
    start_price, price, bids = _amounts(marketplace, rng)
    closed = marketplace == "catawiki" and rng.random() < 0.3  # eBay, LiveAuctioneers: open
    days = -rng.randint(1, 5) if closed else rng.randint(1, 6)  # so all have started
    end = _BASE_TIME + timedelta(days=days, minutes=rng.randrange(0, 1440, 5))
    if marketplace == "liveauctioneers":  # lots are hammered one after another in the live sale
        end = sale_start(seller) + timedelta(minutes=2 * number)
    start = end - timedelta(days=7 if marketplace != "liveauctioneers" else 21)
    reserve_met = marketplace != "catawiki" or subtitle == "No reserve price" or rng.random() < 0.6
    low = Decimal(rng.choice((150, 200, 300, 400, 600, 800, 1200)))
    estimated = marketplace in ("liveauctioneers", "catawiki")
    slug = slugify(title, keep_case=marketplace == "ebay")
    if lot_id in config.renamed_slugs:
        slug = f"{slug}-2"  # a retitled or re-indexed listing: same id, new slug
    images = tuple(_image_name(config, marketplace, lot_id, n) for n in (1, 2))
    with_bin = marketplace == "ebay" and bids == 0 and rng.random() < 0.5
    buy_now = start_price * 3 if with_bin else None
    return MarketLot(
        marketplace=marketplace,
        lot_id=lot_id,
        slug=slug,
        title=title,
        subtitle=subtitle,
        description=description,
        condition=condition,
        culture=culture,
        object_name=obj,
        material=material,
        country=country,
        height_cm=height,
        currency=seller.currency,
        price=price,
        starting_price=start_price,
        buy_now_price=buy_now,
        bid_count=bids,
        estimate_low=low if estimated else None,
        estimate_high=low * 2 if estimated else None,
        closed=closed,
        sold=closed and reserve_met,
        reserve_price_met=reserve_met,
        start_time=start,
        end_time=end,
        seller=seller,
        sale_id=_sale_id(marketplace, seller, number),
        lot_number=str(number) if marketplace != "liveauctioneers" or number % 7 else f"{number}A",
        image_names=images,
        promoted=kind == "promoted",
    )


def sale_start(seller: Seller) -> datetime:
    """When a LiveAuctioneers seller's live sale (its one catalog) starts."""
    return _BASE_TIME + timedelta(days=2 + int(seller.seller_id) % 5, hours=-3)


def _sale_id(marketplace: str, seller: Seller, number: int) -> str:
    """LiveAuctioneers: the seller's catalog (one sale each); Catawiki: one of three weekly
    themed auctions; eBay has no sales."""
    if marketplace == "liveauctioneers":
        return f"2{seller.seller_id.zfill(5)}"
    return f"51240{number % 3}" if marketplace == "catawiki" else ""


def _image_name(config: DemoConfig, marketplace: str, lot_id: str, n: int) -> str:
    """The image's name in the platform's URL scheme (eBay: an opaque 16-character token)."""
    if marketplace == "ebay":
        return _digest(config, "ebay-image", lot_id, str(n))[:16]
    if marketplace == "liveauctioneers":
        return f"{lot_id}_{n}_x.png"
    return f"{lot_id}-{n}.png"
