"""The demo site's data: three auction houses and their lots, generated deterministically.

Everything here is pure (no I/O) and depends only on the configuration seed, the house and the
sale date, so the demo and the tests see the same lots on every run and every machine, and a
lot page can be served from its id alone without storing anything.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
import struct
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal


@dataclass(frozen=True)
class DemoConfig:
    """How the demo site behaves: its data (seed, sizes) and the faults it injects."""

    seed: int = 7
    lots_per_sale: int = 24
    page_size: int = 10
    images_per_lot: int = 2
    latency: float = 0.0
    error_rate: float = 0.0
    throttle_rate: float = 0.0
    retry_after: int = 1
    changed_layout: frozenset[str] = field(default_factory=frozenset)
    crawl_delay: float | None = None
    disallow: tuple[str, ...] = ()  # extra robots.txt Disallow paths, e.g. one lot's URL
    unreachable: frozenset[str] = field(default_factory=frozenset)  # houses or marketplaces
    # The demo marketplaces (sites.demo.marketplaces): results per search page, lot ids served
    # under a new slug (same id, as on a later day), marketplaces that rename one JSON key.
    search_page_size: int = 8
    renamed_slugs: frozenset[str] = field(default_factory=frozenset)
    renamed_json_key: frozenset[str] = field(default_factory=frozenset)
    # The marketplaces' clock: the moment their pages show (aware; None is the demo's base
    # time, 2026-03-14T18:00Z), and open lots their searches leave out (re-ranked listings).
    market_time: datetime | None = None
    hidden_from_search: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        """Reject settings that would make the site meaningless, naming the setting."""
        if self.lots_per_sale < 1:
            raise ValueError(f"lots_per_sale must be at least 1, got {self.lots_per_sale}")
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        if self.images_per_lot < 0:
            raise ValueError(f"images_per_lot must be 0 or more, got {self.images_per_lot}")
        if self.latency < 0 or self.retry_after < 0:
            raise ValueError("latency and retry_after must not be negative")
        for name in ("error_rate", "throttle_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0.0 and 1.0, got {rate}")
        unknown = (self.changed_layout - HOUSES.keys()) | (
            self.unreachable - HOUSES.keys() - set(MARKETPLACES)
        )
        if unknown:
            raise ValueError(
                f"unknown house slug(s) {sorted(unknown)}; known: {', '.join(sorted(HOUSES))}"
                f" (unreachable also takes a marketplace: {', '.join(MARKETPLACES)})"
            )
        if self.search_page_size < 1:
            raise ValueError(f"search_page_size must be at least 1, got {self.search_page_size}")
        for name in ("renamed_slugs", "hidden_from_search"):
            bad_ids = sorted(i for i in getattr(self, name) if not i.isdigit())
            if bad_ids:
                raise ValueError(f"{name} takes marketplace lot ids (digits), got {bad_ids}")
        self._check_market_time()
        unknown_markets = sorted(self.renamed_json_key - set(MARKETPLACES))
        if unknown_markets:
            raise ValueError(
                f"renamed_json_key takes marketplace names, got {unknown_markets}; "
                f"known: {', '.join(MARKETPLACES)}"
            )

    def _check_market_time(self) -> None:
        """Refuse a market time that is not an aware datetime; store it in UTC."""
        moment = self.market_time
        if moment is None:
            return
        if not isinstance(moment, datetime):
            raise ValueError(
                f"market_time must be a timezone-aware datetime, e.g. "
                f"datetime(2026, 3, 15, 12, tzinfo=UTC), got {moment!r}"
            )
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"market_time must be timezone-aware (UTC), got the naive {moment.isoformat()}; "
                "add tzinfo=UTC"
            )
        if not 2000 <= moment.year <= 2100:
            raise ValueError(f"market_time must lie in 2000-2100, got {moment.isoformat()}")
        object.__setattr__(self, "market_time", moment.astimezone(UTC))


@dataclass(frozen=True)
class House:
    """One auction house of the demo site; ``code`` prefixes its lot ids."""

    slug: str
    name: str
    city: str
    currency: str
    language: str
    code: str


HOUSES: dict[str, House] = {
    h.slug: h
    for h in (
        House("harrow-finch", "Harrow & Finch", "London", "GBP", "en-GB", "hf"),
        House("hotel-lumiere", "Hôtel des Ventes Lumière", "Paris", "EUR", "fr-FR", "hl"),
        House("brooklyn-gallery", "Brooklyn Fine Arts", "New York", "USD", "en-US", "bg"),
    )
}

MARKETPLACES: tuple[str, ...] = ("ebay", "liveauctioneers", "catawiki")
"""The demo marketplaces (path prefixes of the same server), see sites.demo.marketplaces."""


@dataclass(frozen=True)
class DemoLot:
    """One lot as the demo site knows it: the truth a scraper's output is checked against."""

    house: str
    lot_id: str
    lot_number: int
    title: str
    description: str
    currency: str
    estimate_low: Decimal
    estimate_high: Decimal
    sold_price: Decimal | None
    sale_date: date
    image_names: tuple[str, ...]


# (culture en, culture fr, object en, object fr, country key, materials en, materials fr)
_OBJECTS: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("Baule", "Baoulé", "mask", "Masque", "CI", "wood and kaolin", "bois et kaolin"),
    (
        "Yoruba",
        "Yoruba",
        "ibeji figure",
        "Statuette ibeji",
        "NG",
        "wood, glass beads and camwood",
        "bois, perles de verre et poudre de padouk",
    ),
    ("Kuba", "Kuba", "textile", "Textile", "CD", "raffia cut-pile", "velours de raphia"),
    (
        "Dan",
        "Dan",
        "deangle mask",
        "Masque deangle",
        "LR",
        "wood with a deep patina",
        "bois à patine profonde",
    ),
    (
        "Senufo",
        "Sénoufo",
        "heddle pulley",
        "Poulie de métier à tisser",
        "CI",
        "carved wood",
        "bois sculpté",
    ),
    (
        "Fang",
        "Fang",
        "reliquary figure (byeri)",
        "Figure de reliquaire (byeri)",
        "GA",
        "wood and brass",
        "bois et laiton",
    ),
    ("Luba", "Luba", "headrest", "Appui-nuque", "CD", "wood", "bois"),
    (
        "Chokwe",
        "Tchokwé",
        "chief's chair",
        "Siège de chef",
        "AO",
        "wood, hide and brass tacks",
        "bois, peau et clous de laiton",
    ),
    (
        "Bamana",
        "Bambara",
        "chiwara headdress",
        "Cimier tyiwara",
        "ML",
        "wood and iron",
        "bois et fer",
    ),
    ("Dogon", "Dogon", "granary door", "Porte de grenier", "ML", "weathered wood", "bois érodé"),
    (
        "Songye",
        "Songyé",
        "kifwebe mask",
        "Masque kifwebe",
        "CD",
        "wood and pigments",
        "bois et pigments",
    ),
    (
        "Kota",
        "Kota",
        "reliquary guardian figure",
        "Figure de gardien de reliquaire",
        "GA",
        "wood, copper and brass",
        "bois, cuivre et laiton",
    ),
    ("Asante", "Ashanti", "akua'ba figure", "Poupée akua'ba", "GH", "wood", "bois"),
    (
        "Makonde",
        "Makondé",
        "helmet mask",
        "Masque-heaume",
        "TZ",
        "wood, human hair and wax",
        "bois, cheveux et cire",
    ),
    (
        "Igbo",
        "Igbo",
        "maiden spirit mask",
        "Masque de jeune fille",
        "NG",
        "wood and kaolin",
        "bois et kaolin",
    ),
    (
        "Ndebele",
        "Ndébélé",
        "beaded apron (ijogolo)",
        "Tablier perlé (ijogolo)",
        "ZA",
        "glass beads on hide",
        "perles de verre sur peau",
    ),
    (
        "Amhara",
        "Amhara",
        "processional cross",
        "Croix de procession",
        "ET",
        "cast brass",
        "laiton fondu",
    ),
    (
        "Bamileke",
        "Bamiléké",
        "beaded stool",
        "Tabouret perlé",
        "CM",
        "wood, cloth and beads",
        "bois, tissu et perles",
    ),
)

_COUNTRIES: dict[str, tuple[str, str]] = {
    "CI": ("Côte d'Ivoire", "Côte d'Ivoire"),
    "NG": ("Nigeria", "Nigeria"),
    "CD": ("DR Congo", "RD Congo"),
    "LR": ("Liberia", "Libéria"),
    "GA": ("Gabon", "Gabon"),
    "AO": ("Angola", "Angola"),
    "ML": ("Mali", "Mali"),
    "GH": ("Ghana", "Ghana"),
    "TZ": ("Tanzania", "Tanzanie"),
    "ZA": ("South Africa", "Afrique du Sud"),
    "ET": ("Ethiopia", "Éthiopie"),
    "CM": ("Cameroon", "Cameroun"),
}

_CONDITIONS: tuple[tuple[str, str], ...] = (
    (
        "Fine aged patina; minor losses to the base.",
        "Belle patine d'usage ; petits manques à la base.",
    ),
    (
        "Old repair to one side, otherwise good condition.",
        "Ancienne restauration sur un côté, sinon bon état.",
    ),
    (
        "Encrusted surface with traces of ritual use.",
        "Surface croûteuse avec traces d'usage rituel.",
    ),
    ("Age cracks consistent with use; stable.", "Fentes de séchage dues à l'âge ; stable."),
)

_PROVENANCES: tuple[tuple[str, str], ...] = (
    (
        "Collected in situ c. 1930; thence by descent.",
        "Collecté in situ vers 1930 ; puis par descendance.",
    ),
    (
        "Galerie Mbëlé, Paris; private collection, Brussels, acquired in 1962.",
        "Galerie Mbëlé, Paris ; collection particulière, Bruxelles, acquis en 1962.",
    ),
    (
        "Collection of Hélène Dufresne, Genève, acquired before 1970.",
        "Collection Hélène Dufresne, Genève, acquis avant 1970.",
    ),
    (
        "Estate of Søren Åkesson, København; by descent to the present owner.",
        "Succession Søren Åkesson, Copenhague ; par descendance à l'actuel propriétaire.",
    ),
)

_LOT_ID = re.compile(r"^(?P<code>[a-z]{2})-(?P<day>\d{8})-(?P<number>\d{3,})$")
_IMAGE_NAME = re.compile(r"^(?P<lot_id>[a-z0-9-]+)-(?P<index>\d+)\.png$")
_IMAGE_SIZE = 24


def sale_size(config: DemoConfig, house_slug: str, day: date) -> int:
    """How many lots a house offers on ``day``: within ±25% of ``lots_per_sale``, at least 1."""
    low = max(1, math.ceil(config.lots_per_sale * 3 / 4))
    high = max(low, config.lots_per_sale * 5 // 4)
    return _rng(config, house_slug, day, "size").randint(low, high)


def _rng(config: DemoConfig, house_slug: str, day: date, purpose: str) -> random.Random:
    """A generator seeded from a string (``random`` hashes it with SHA-512, unsalted)."""
    return random.Random(f"demo/{config.seed}/{house_slug}/{day.isoformat()}/{purpose}")


def _round_nicely(amount: float) -> int:
    """Round to the steps auction houses use (50 below 1,000, then 100, 500, 1,000)."""
    step = 50 if amount < 1_000 else 100 if amount < 5_000 else 500 if amount < 20_000 else 1_000
    return max(step, round(amount / step) * step)


class Catalogue:
    """All lots of all demo houses on every day, computed on demand from the configuration."""

    def __init__(self, config: DemoConfig | None = None) -> None:
        """Build a catalogue for ``config`` (the defaults when omitted)."""
        self.config = config or DemoConfig()

    def house(self, slug: str) -> House:
        """The house with this slug; raise KeyError listing the known slugs otherwise."""
        try:
            return HOUSES[slug]
        except KeyError:
            raise KeyError(f"unknown house {slug!r}; known: {', '.join(HOUSES)}") from None

    def lots(self, house_slug: str, day: date) -> list[DemoLot]:
        """The lots of ``house_slug``'s sale on ``day``, in lot-number order."""
        house = self.house(house_slug)
        rng = _rng(self.config, house_slug, day, "lots")
        count = sale_size(self.config, house_slug, day)
        return [self._make_lot(house, day, number, rng) for number in range(1, count + 1)]

    def lot(self, house_slug: str, lot_id: str) -> DemoLot | None:
        """The lot with this id at this house, or None when there is no such lot."""
        match = _LOT_ID.match(lot_id)
        house = HOUSES.get(house_slug)
        if match is None or house is None or match["code"] != house.code:
            return None
        try:
            day = date(int(match["day"][:4]), int(match["day"][4:6]), int(match["day"][6:]))
        except ValueError:
            return None
        number = int(match["number"])
        lots = self.lots(house_slug, day)
        if not 1 <= number <= len(lots) or lots[number - 1].lot_id != lot_id:
            return None
        return lots[number - 1]

    def lot_for_image(self, house_slug: str, image_name: str) -> DemoLot | None:
        """The lot at this house that shows ``image_name``, or None when no lot does."""
        match = _IMAGE_NAME.match(image_name)
        if match is None:
            return None
        lot = self.lot(house_slug, match["lot_id"])
        return lot if lot is not None and image_name in lot.image_names else None

    def image_bytes(self, name: str) -> bytes:
        """A small valid PNG whose solid colour is derived from ``name``; same name, same bytes."""
        red, green, blue = hashlib.sha256(name.encode("utf-8")).digest()[:3]
        row = b"\x00" + bytes((red, green, blue)) * _IMAGE_SIZE
        header = struct.pack(">IIBBBBB", _IMAGE_SIZE, _IMAGE_SIZE, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(row * _IMAGE_SIZE, 9))
            + _png_chunk(b"IEND", b"")
        )

    def _make_lot(self, house: House, day: date, number: int, rng: random.Random) -> DemoLot:
        """Draw one lot from ``rng``; the caller draws lots in order so each is reproducible."""
        culture_en, culture_fr, obj_en, obj_fr, country, mat_en, mat_fr = rng.choice(_OBJECTS)
        condition_en, condition_fr = rng.choice(_CONDITIONS)
        provenance_en, provenance_fr = rng.choice(_PROVENANCES)
        height = rng.randint(80, 1200) / 10
        low = min(30_000, _round_nicely(math.exp(rng.uniform(math.log(200), math.log(30_000)))))
        high = min(50_000, max(low + 50, _round_nicely(low * rng.uniform(1.3, 1.8))))
        sold = None if rng.random() < 0.25 else _round_nicely(rng.uniform(0.85 * low, 1.5 * high))
        if house.language.startswith("fr"):
            title = f"{obj_fr} {culture_fr}, {_COUNTRIES[country][1]}"
            size = f"{height:.1f}".replace(".", ",")
            description = (
                f"{obj_fr} {culture_fr} en {mat_fr}. {condition_fr} Hauteur : {size} cm. "
                f"Provenance : {provenance_fr}"
            )
        else:
            title = f"{culture_en} {obj_en}, {_COUNTRIES[country][0]}"
            description = (
                f"{culture_en} {obj_en} in {mat_en}. {condition_en} Height {height:.1f} cm. "
                f"Provenance: {provenance_en}"
            )
        lot_id = f"{house.code}-{day:%Y%m%d}-{number:03d}"
        images = tuple(f"{lot_id}-{i}.png" for i in range(1, self.config.images_per_lot + 1))
        return DemoLot(
            house=house.slug,
            lot_id=lot_id,
            lot_number=number,
            title=title,
            description=description,
            currency=house.currency,
            estimate_low=Decimal(low),
            estimate_high=Decimal(high),
            sold_price=None if sold is None else Decimal(sold),
            sale_date=day,
            image_names=images,
        )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC over type and data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
