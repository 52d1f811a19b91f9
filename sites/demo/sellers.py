"""The demo marketplaces' sellers: who they are and what each platform's profile page shows.

Ten sellers, each listing on one marketplace: eBay members (feedback score, percent positive,
member since), LiveAuctioneers auction houses (followers, star ratings) and Catawiki sellers
(reviews and their score, member since). Lot pages and profile pages read the same facts, so
a crawl's sellers can be checked against :data:`SELLERS`. Pure data, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

SELLER_PATHS: dict[str, str] = {
    "ebay": "/ebay/usr/{seller_id}",
    "liveauctioneers": "/liveauctioneers/auctioneer/{seller_id}/{slug}",
    "catawiki": "/catawiki/u/{seller_id}",
}
"""Canonical seller profile path per marketplace (the platform's own pattern under a prefix)."""

_TENTH = Decimal("0.1")


@dataclass(frozen=True)
class EbayFacts:
    """What an eBay member page (``/usr/NAME``) shows of a seller besides name and location."""

    member_since: date
    feedback_score: int  # eBay's feedback score: the count after the name, "(4812)"
    positive_percent: Decimal  # "99.6% Positive feedback" (last 12 months), one decimal


@dataclass(frozen=True)
class LiveAuctioneersFacts:
    """What a LiveAuctioneers auctioneer page shows: its followers and its star ratings."""

    followers: int
    star_counts: tuple[int, int, int, int, int]  # how many ratings gave 5, 4, 3, 2 and 1 stars

    @property
    def ratings_count(self) -> int:
        """How many buyers rated the auctioneer."""
        return sum(self.star_counts)

    @property
    def rating(self) -> Decimal:
        """The mean rating out of 5, to one decimal (half up), as the page shows it."""
        stars = sum(n * count for n, count in zip((5, 4, 3, 2, 1), self.star_counts, strict=True))
        return (Decimal(stars) / self.ratings_count).quantize(_TENTH, ROUND_HALF_UP)


@dataclass(frozen=True)
class CatawikiFacts:
    """What a Catawiki seller page (``/u/ID``) shows: member since, reviews and their score."""

    member_since: datetime  # the account's createdAt, UTC
    positive_count: int
    neutral_count: int
    negative_count: int

    @property
    def score(self) -> Decimal:
        """The feedback score: percent positive of the positive and negative reviews."""
        rated = self.positive_count + self.negative_count
        return (Decimal(100 * self.positive_count) / rated).quantize(_TENTH, ROUND_HALF_UP)


Facts = EbayFacts | LiveAuctioneersFacts | CatawikiFacts
F = TypeVar("F", EbayFacts, LiveAuctioneersFacts, CatawikiFacts)


@dataclass(frozen=True)
class Seller:
    """A marketplace seller: an eBay member, a LiveAuctioneers house or a Catawiki seller.

    ``facts`` holds what its platform's profile page shows (read them through ``ebay``,
    ``liveauctioneers`` or ``catawiki``); lot pages showing seller facts read the same ones.
    """

    seller_id: str  # eBay: the user name; elsewhere a number
    name: str
    city: str
    country: str  # English country name
    country_code: str
    currency: str  # what this seller lists in (eBay); the platform's currency elsewhere
    locale: str  # eBay only: the listing site's locale and domain
    domain: str
    description: str  # the profile's "about" text
    facts: Facts

    @property
    def location(self) -> str:
        """Where the seller is, as profiles print it: ``Berlin, Germany``."""
        return f"{self.city}, {self.country}"

    @property
    def slug(self) -> str:
        """The name as a URL slug (LiveAuctioneers' ``/auctioneer/ID/slug``)."""
        return slugify(self.name)

    @property
    def ebay(self) -> EbayFacts:
        """The eBay profile facts; TypeError for a seller of another platform."""
        return _facts_of(self, EbayFacts)

    @property
    def liveauctioneers(self) -> LiveAuctioneersFacts:
        """The LiveAuctioneers profile facts; TypeError for a seller of another platform."""
        return _facts_of(self, LiveAuctioneersFacts)

    @property
    def catawiki(self) -> CatawikiFacts:
        """The Catawiki profile facts; TypeError for a seller of another platform."""
        return _facts_of(self, CatawikiFacts)


def _facts_of(seller: Seller, kind: type[F]) -> F:
    if not isinstance(seller.facts, kind):
        raise TypeError(
            f"seller {seller.seller_id!r} has {type(seller.facts).__name__}, not {kind.__name__}"
        )
    return seller.facts


# Ten sellers; each lot draws one from its marketplace's tuple (keep their number and order:
# the lots' random draws depend on them). Facts are plausible and all different.
SELLERS: dict[str, tuple[Seller, ...]] = {
    "ebay": (
        Seller("tribalarts-london", "tribalarts-london", "London", "United Kingdom", "GB",
               "GBP", "en_GB", "ebay.co.uk",
               "Dealers in African and Oceanic art since 1998, trading from Portobello Road. "
               "Every object is sold with its provenance & a signed certificate.",
               EbayFacts(date(2009, 3, 12), 4812, Decimal("99.6"))),
        Seller("galerie.kanaga", "galerie.kanaga", "Bruxelles", "Belgium", "BE", "EUR",
               "fr_BE", "befr.ebay.be",
               "Galerie d'art africain ancien au Sablon. Objets expertisés, envoi soigné dans "
               "le monde entier.",
               EbayFacts(date(2012, 11, 5), 1377, Decimal("99.8"))),
        Seller("afrikahaus_berlin", "afrikahaus_berlin", "Berlin", "Germany", "DE", "EUR",
               "de_DE", "ebay.de",
               "Afrikanische Kunst aus alten Sammlungen: Masken, Figuren und Textilien. "
               "Versicherter Versand weltweit.",
               EbayFacts(date(2004, 6, 2), 12509, Decimal("98.9"))),
        Seller("sahel_trading_co", "sahel_trading_co", "Santa Fe, New Mexico", "United States",
               "US", "USD", "en_US", "ebay.com",
               "Family business selling West African masks, textiles and trade beads. Ships "
               "from Santa Fe within 2 business days.",
               EbayFacts(date(2017, 8, 21), 233, Decimal("97.4"))),
    ),
    "liveauctioneers": (
        Seller("7421", "Kessler & Vane Auctioneers", "New York", "United States", "US", "USD",
               "", "",
               "Fine art and antiques auctioneers in Manhattan, holding monthly sales of "
               "African, Oceanic and Pre-Columbian art.",
               LiveAuctioneersFacts(18532, (1240, 198, 41, 12, 19))),
        Seller("3310", "Old Ferry Auction House", "Nyack", "United States", "US", "USD", "", "",
               "A family-run auction house on the Hudson, with estate sales every other "
               "Saturday (10 a.m./2 p.m.) since 1978.",
               LiveAuctioneersFacts(2147, (188, 54, 17, 6, 9))),
        Seller("9087", "Maison Duvernay", "Paris", "France", "FR", "USD", "", "",
               "Maison de ventes parisienne spécialisée dans les arts d'Afrique, d'Océanie et "
               "des Amériques.",
               LiveAuctioneersFacts(9806, (602, 77, 15, 3, 4))),
    ),
    "catawiki": (
        Seller("1184305", "Galerie Ubuntu", "Antwerpen", "Belgium", "BE", "EUR", "", "",
               "Tribal art gallery in Antwerp offering masks and figures from Central and West "
               "Africa, each with a condition report.",
               CatawikiFacts(datetime(2015, 2, 17, 10, 41, 7, tzinfo=UTC), 1834, 21, 9)),
        Seller("2250761", "Tribal Heritage NL", "Amsterdam", "Netherlands", "NL", "EUR", "", "",
               "Collector-dealer in Amsterdam: African textiles, currency and ritual objects, "
               "carefully photographed.",
               CatawikiFacts(datetime(2019, 9, 3, 18, 2, 55, tzinfo=UTC), 412, 8, 5)),
        Seller("903117", "Afrika Sammlung Köln", "Köln", "Germany", "DE", "EUR", "", "",
               "Afrikanische Kunst mit Provenienz aus deutschen Privatsammlungen, von Köln aus "
               "versandt.",
               CatawikiFacts(datetime(2011, 6, 28, 7, 15, 30, tzinfo=UTC), 5210, 44, 17)),
    ),
}  # fmt: skip


def slugify(text: str, keep_case: bool = False) -> str:
    """A URL slug of ``text``: ASCII letters and digits joined by hyphens (eBay keeps case)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")
    return slug if keep_case else slug.lower()


def seller_path(marketplace: str, seller: Seller) -> str:
    """The seller's canonical profile path on the demo server, e.g. ``/catawiki/u/903117``."""
    return SELLER_PATHS[marketplace].format(seller_id=seller.seller_id, slug=seller.slug)


def seller_order(seller: Seller) -> tuple[int, str]:
    """Sort key: numeric ids by value (903117 before 1184305), user names alphabetically."""
    digits = seller.seller_id.isdigit()
    return (int(seller.seller_id) if digits else 0, "" if digits else seller.seller_id)
