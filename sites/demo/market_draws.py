"""The demo marketplaces' lot draws: what each lot is, and when it is listed, bid on and closed.

The research group finds lots by keyword search with spelling variants ("mambila",
"mambilla"), so each marketplace needs lots that match one spelling, the other, both, a
third query ("chamba") or none. The pipeline follows each lot over several crawls a day on
2026-03-14, 15 and 16, so each group of lots also mixes schedules (:data:`ROLE_CYCLE`):
lots that closed before, close on the 14th, the 15th or the morning of the 16th, close
later, are withdrawn on the 15th, or are first listed on the 15th or the 16th. Everything
is drawn from generators seeded by the configuration: pure and time-independent (the
catalogue derives each moment's state with :func:`sites.demo.market_lot.lot_as_of`).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sites.demo.catalogue import DemoConfig
from sites.demo.market_lot import BASE_TIME, MarketLot, lot_as_of
from sites.demo.sellers import SELLERS, Seller, slugify

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


# How many lots of each kind a marketplace has: (kind, low, high). "both" lots carry one
# spelling in the title and the other in the description; "promoted" ones are eBay's
# sponsored results.
_GROUPS = (
    ("mambila", 7, 9),
    ("mambilla", 6, 8),
    ("both", 4, 5),
    ("chamba", 11, 13),
    ("other", 9, 12),
)
_PROMOTED = 4
_ID_RANGES = {  # disjoint lengths, so a bare id names its marketplace
    "ebay": (100_000_000_000, 400_000_000_000),
    "liveauctioneers": (100_000_000, 200_000_000),
    "catawiki": (40_000_000, 60_000_000),
}

ROLE_CYCLE: tuple[tuple[str, str], ...] = (
    ("later", "any"),
    ("d16", "sold"),
    ("d15", "any"),
    ("later", "any"),
    ("d16", "unsold"),
    ("new15", "any"),
    ("later", "withdrawn"),
    ("d15", "sold"),
    ("past", "any"),
    ("d16", "any"),
    ("later", "any"),
    ("d14", "any"),
    ("new16", "any"),
)
"""(timing, outcome) of a group's lots: its first n entries, shuffled among the group's n lots.

Timings: ``past`` closed on the 10th-13th; ``d14`` closes on the 14th between 06:05 and
17:55 UTC; ``d15`` on the 15th; ``d16`` on the 16th before noon; ``later`` on the 17th-20th;
``new15`` and ``new16`` are first listed on that day before noon. All but the new ones are
listed before 06:00 on the 14th. Outcomes: ``sold`` has 8 bids or more and sells, ``unsold``
ends without a sale, ``withdrawn`` is ended by the seller on the 15th (00:00-11:55) without
a bid; ``any`` is drawn. The order keeps at least nine lots of every query open at the base
time (two result pages), whatever the group sizes drawn.
"""

_DAY0 = datetime(2026, 3, 14, tzinfo=UTC)  # the first crawl day, 00:00 UTC


@dataclass(frozen=True)
class LiveSale:
    """A LiveAuctioneers catalog: one house's live sale, published for absentee bids first."""

    catalog_id: str
    seller_id: str
    title: str
    published: datetime  # the lots are listed (and absentee bidding opens) then
    starts: datetime  # the live sale; lots are hammered one after another from then


def _utc(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


LIVE_SALES: dict[str, LiveSale] = {  # by timing; the houses' local sale hours in UTC
    "past": LiveSale("240188", "3310", "Estate Treasures: Tribal & Ethnographic Art",
                     _utc(2, 14, 15), _utc(2, 28, 15)),  # Sat 10 a.m. EST
    "d14": LiveSale("241903", "3310", "Spring Estates: African & Oceanic Art",
                    _utc(2, 28, 17), _utc(3, 14, 14)),  # Sat 10 a.m. EDT
    "d15": LiveSale("241377", "7421", "African, Oceanic & Pre-Columbian Art",
                    _utc(3, 1, 14), _utc(3, 15, 15)),  # Sun 11 a.m. EDT
    "d16": LiveSale("241522", "9087", "Arts d'Afrique et d'Océanie",
                    _utc(3, 2, 8), _utc(3, 16, 9)),  # Mon 10 h CET
    "later": LiveSale("242046", "7421", "Tribal Art from Private Collections",
                      _utc(3, 5, 14), _utc(3, 19, 15)),  # Thu 11 a.m. EDT
    "new15": LiveSale("242610", "3310", "Hudson Valley Estates: World Art",
                      _utc(3, 15, 4), _utc(3, 28, 14)),  # published at midnight EDT
    "new16": LiveSale("242795", "9087", "Collection Vernier : arts premiers",
                      _utc(3, 16, 7), _utc(3, 31, 12)),  # Tue 14 h CEST
}  # fmt: skip
"""The demo's LiveAuctioneers catalogs, one per timing of :data:`ROLE_CYCLE`."""

_SALES_BY_ID = {sale.catalog_id: sale for sale in LIVE_SALES.values()}


def live_sale(catalog_id: str) -> LiveSale:
    """The LiveAuctioneers catalog with this id (a lot's ``sale_id``); KeyError otherwise."""
    return _SALES_BY_ID[catalog_id]


def digest(config: DemoConfig, *parts: str) -> str:
    """A stable hex digest of the seed and ``parts``: the demo's seeded orders and tokens."""
    return hashlib.sha256("/".join((str(config.seed), *parts)).encode()).hexdigest()


def draw_lots(config: DemoConfig, marketplace: str) -> list[MarketLot]:
    """Every lot of one marketplace, drawn in a fixed order from one seeded generator."""
    rng = random.Random(f"demo-market/{config.seed}/{marketplace}/lots")
    kinds: list[tuple[str, str, str]] = []
    for kind, low, high in _GROUPS:
        roles = [ROLE_CYCLE[n % len(ROLE_CYCLE)] for n in range(rng.randint(low, high))]
        rng.shuffle(roles)
        kinds += [(kind, timing, outcome) for timing, outcome in roles]
    if marketplace == "ebay":
        kinds += [("promoted", "promoted", "any")] * _PROMOTED
    low, high = _ID_RANGES[marketplace]
    ids: list[int] = []
    while len(ids) < len(kinds):
        candidate = rng.randrange(low, high)
        if candidate not in ids:
            ids.append(candidate)
    return [
        _draw_lot(config, marketplace, role, str(lot_id), number, rng)
        for number, (role, lot_id) in enumerate(zip(kinds, ids, strict=True), start=1)
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


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    """A drawn offset of ``low`` to ``high`` minutes, in steps of five."""
    return timedelta(minutes=rng.randrange(low, high, 5))


def _schedule(
    marketplace: str, timing: str, number: int, rng: random.Random
) -> tuple[datetime, datetime]:
    """(start, scheduled end) for a lot of ``timing`` (see :data:`ROLE_CYCLE`).

    eBay listings run 3 to 10 days, Catawiki lots 7 days; a LiveAuctioneers lot is listed
    when its catalog is published and hammered in the live sale, two minutes per lot number.
    """
    if marketplace == "liveauctioneers":
        sale = LIVE_SALES[timing]
        return sale.published, sale.starts + timedelta(minutes=2 * number)
    week = marketplace == "catawiki"

    def days(*choices: int) -> timedelta:
        return timedelta(days=7 if week else rng.choice(choices))

    if timing in ("new15", "new16", "promoted"):
        offset = {"new15": 1, "new16": 2, "promoted": -4}[timing]
        start = _DAY0 + timedelta(days=offset) + _minutes(rng, 0, 720)
        length = timedelta(days=10) if timing == "promoted" else days(3, 5, 7)
        return start, start + length
    if timing == "past":
        end, length = _DAY0 + timedelta(days=rng.randint(-4, -1)) + _minutes(rng, 0, 1440), days(7)
    elif timing == "d14":
        end, length = _DAY0 + _minutes(rng, 365, 1076), days(3, 5, 7)
    elif timing == "d15":
        end, length = _DAY0 + timedelta(days=1) + _minutes(rng, 0, 1440), days(3, 5, 7)
    elif timing == "d16":
        end, length = _DAY0 + timedelta(days=2) + _minutes(rng, 0, 720), days(5, 7, 10)
    else:  # later
        end = _DAY0 + timedelta(days=rng.randint(3, 6)) + _minutes(rng, 0, 1440)
        length = days(7, 10)
    return end - length, end


def _amounts(
    marketplace: str, outcome: str, no_reserve: bool, rng: random.Random
) -> tuple[Decimal, Decimal, int, Decimal | None]:
    """(starting price, final price, total bids, reserve) for a lot of ``outcome``.

    Only Catawiki has reserves (lots subtitled "No reserve price" have none); a Catawiki
    lot ``unsold`` with a reserve had bids below it, elsewhere ``unsold`` means no bid.
    """
    no_bid = outcome in ("unsold", "withdrawn")
    if marketplace == "ebay":
        start = Decimal(rng.choice((49, 75, 99, 120, 150, 250, 395, 600))) + Decimal("0.99")
        if no_bid:
            return start, start, 0, None
        bids = rng.choice((8, 11, 13, 17) if outcome == "sold" else (0, 0, 1, 2, 3, 5, 8, 13))
        raised = start * Decimal(1 + 0.12 * bids * rng.uniform(0.6, 1.4))
        return start, raised.quantize(Decimal("0.5")) if bids else start, bids, None
    step = Decimal(rng.choice((10, 25, 50)))
    if marketplace == "liveauctioneers":
        start = Decimal(rng.choice((50, 100, 200, 400)))
        if no_bid:
            bids = 0
        elif outcome == "sold":
            bids = rng.randint(10, 24)
        else:
            bids = 0 if rng.random() < 0.2 else rng.randint(1, 24)
        return start, start + step * bids, bids, None
    start = Decimal(1)
    if outcome == "withdrawn" or (outcome == "unsold" and no_reserve):
        bids = 0
    else:
        bids = rng.randint(10, 24) if outcome == "sold" else rng.randint(3 if no_bid else 1, 24)
    final = start + step * bids
    if no_reserve:
        return start, final, bids, None
    met = outcome == "sold" or (outcome == "any" and rng.random() < 0.6)
    reserve = start + step * max(1, math.ceil(bids * 0.6)) if met and bids else final + step * 3
    return start, final, bids, reserve


def _sale_id(marketplace: str, timing: str, end: datetime) -> str:
    """LiveAuctioneers: the lot's catalog; Catawiki: the themed auction closing that day;
    eBay has no sales."""
    if marketplace == "liveauctioneers":
        return LIVE_SALES[timing].catalog_id
    return f"5124{end.timetuple().tm_yday % 100:02d}" if marketplace == "catawiki" else ""


def _draw_lot(config: DemoConfig, marketplace: str, role: tuple[str, str, str], lot_id: str,
              number: int, rng: random.Random) -> MarketLot:  # fmt: skip
    """One lot; the caller draws lots in a fixed order so each is reproducible."""
    kind, timing, outcome = role
    culture, other, obj, material, country = _subject(kind, rng)
    title, subtitle = _titles(marketplace, culture, obj, material, country, rng)
    condition = rng.choice(_CONDITIONS)
    height = Decimal(rng.randint(80, 900)) / 10
    also = f" The {culture} are also written {other} in older literature." if other else ""
    description = (
        f"{obj[0].upper()}{obj[1:]}, {culture} people, {country}, in {material}.{also} "
        f"{condition} Height {height} cm. Provenance: {rng.choice(_PROVENANCES)}."
    )
    if marketplace == "liveauctioneers":
        seller = _seller(marketplace, LIVE_SALES[timing].seller_id)
    else:
        seller = rng.choice(SELLERS[marketplace])
    no_reserve = marketplace != "catawiki" or subtitle == "No reserve price"
    start_price, final, bids, reserve = _amounts(marketplace, outcome, no_reserve, rng)
    start, end = _schedule(marketplace, timing, number, rng)
    withdrawn = (
        _DAY0 + timedelta(days=1) + _minutes(rng, 0, 720) if outcome == "withdrawn" else None
    )
    low = Decimal(rng.choice((150, 200, 300, 400, 600, 800, 1200)))
    estimated = marketplace in ("liveauctioneers", "catawiki")
    slug = slugify(title, keep_case=marketplace == "ebay")
    if lot_id in config.renamed_slugs:
        slug = f"{slug}-2"  # a retitled or re-indexed listing: same id, new slug
    images = tuple(_image_name(config, marketplace, lot_id, n) for n in (1, 2))
    with_bin = marketplace == "ebay" and bids == 0 and rng.random() < 0.5
    drawn = MarketLot(
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
        price=start_price,
        starting_price=start_price,
        buy_now_price=start_price * 3 if with_bin else None,
        bid_count=0,
        estimate_low=low if estimated else None,
        estimate_high=low * 2 if estimated else None,
        closed=False,
        sold=False,
        reserve_price_met=reserve is None,
        start_time=start,
        end_time=end,
        seller=seller,
        sale_id=_sale_id(marketplace, timing, end),
        lot_number=str(number) if marketplace != "liveauctioneers" or number % 7 else f"{number}A",
        image_names=images,
        promoted=kind == "promoted",
        final_price=final,
        total_bids=bids,
        reserve_price=reserve,
        scheduled_end_time=end,
        withdrawn_time=withdrawn,
        as_of=BASE_TIME,
    )
    return lot_as_of(drawn, BASE_TIME)


def _seller(marketplace: str, seller_id: str) -> Seller:
    return next(s for s in SELLERS[marketplace] if s.seller_id == seller_id)


def _image_name(config: DemoConfig, marketplace: str, lot_id: str, n: int) -> str:
    """The image's name in the platform's URL scheme (eBay: an opaque 16-character token)."""
    if marketplace == "ebay":
        return digest(config, "ebay-image", lot_id, str(n))[:16]
    if marketplace == "liveauctioneers":
        return f"{lot_id}_{n}_x.png"
    return f"{lot_id}-{n}.png"
