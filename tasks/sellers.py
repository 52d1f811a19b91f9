"""Sellers: which profile page a lot's seller has, and the seller record read from it.

The crawl asks :func:`seller_url` for each lot page it fetched and fetches each profile once
(``tasks/crawl.py``); processing reads the profiles back from the WARC, ties each to the
seller id the lots named (following stored redirects), and writes the day's sellers beside
its lots (``tasks/process.py``). A profile whose fields cannot be read is held back with its
raw text and the reason, like an invalid lot; its lots keep naming the seller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from sites.loader import SiteDefinition
from sites.sellers import SellerProfile
from tasks.chains import Page, evaluate, page_of
from tasks.extract import RawLot, absolute_url, extract_fields
from tasks.normalise import (
    normalise_space,
    parse_int,
    parse_number,
    parse_sale_date,
)
from tasks.politeness import MAX_REDIRECTS, accepted
from tasks.timestamps import parse_time
from tasks.warc import read_responses

_T = TypeVar("_T")


class SellerRecord(BaseModel):
    """One seller as its profile page showed it on one crawl, with the raw strings behind it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str
    seller_id: str = Field(min_length=1, description="the platform's id (eBay: user name)")
    url: str = Field(description="the profile page's URL")
    name: str | None = None
    location: str | None = None
    rating: Decimal | None = Field(None, ge=0, description="on the scale rating_scale")
    rating_scale: int | None = Field(None, description="what rating is out of: 5, 100")
    ratings_count: int | None = Field(None, ge=0, description="ratings or reviews counted")
    followers: int | None = Field(None, ge=0)
    member_since: dt.date | None = None
    description: str | None = None
    raw: dict[str, str | list[str] | None] = Field(description="extracted strings, for audit")


class SellerValidationError(ValueError):
    """A profile page whose fields cannot be read; the message names site, seller, URL and
    each field with its raw value and what was expected. ``raw`` holds the strings read."""

    def __init__(self, message: str, raw: RawLot) -> None:
        """The problems as ``message``; ``raw`` the profile's extracted strings."""
        super().__init__(message)
        self.raw = raw

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled between processes like LotValidationError: keep both arguments.
        return (type(self), (str(self), self.raw))


def seller_url(site: SiteDefinition, lot_page: Page, lot_url: str, raw: RawLot) -> str | None:
    """The profile URL of the seller of the lot at ``lot_url`` (None: the site has no
    ``seller:`` section, or the page names no seller / links no profile)."""
    profile = site.seller
    if profile is None:
        return None
    if profile.link is not None:
        for href in evaluate(lot_page, profile.link, links=True)[:1]:
            return absolute_url(lot_url, href)
        return None
    seller_id = raw.get("seller_id")
    if not isinstance(seller_id, str) or not seller_id.strip():
        return None
    return profile.url_for(site.base_url, seller_id.strip())


def _member_since(profile: SellerProfile, site: SiteDefinition) -> Callable[[str], dt.date]:
    """How the profile's ``member_since`` is read: a date, or a time whose UTC day it is."""
    rule = profile.fields.get("member_since")
    parser = rule.parser if rule is not None else "date"

    def read(text: str) -> dt.date:
        if parser == "date":
            return parse_sale_date(text, site.date_languages)
        return parse_time(text, parser, site.date_languages).date()

    return read


def normalise_seller(site: SiteDefinition, seller_id: str, url: str, page: Page) -> SellerRecord:
    """The seller record of ``seller_id`` from its profile ``page`` at ``url``; raises
    SellerValidationError naming every field that cannot be read."""
    profile = site.seller
    assert profile is not None
    raw = extract_fields(profile.fields, page, url)
    problems: list[str] = []

    def parse(name: str, read: Callable[[str], _T]) -> _T | None:
        value = raw.get(name)
        if name not in profile.fields or not isinstance(value, str) or not value.strip():
            return None
        try:
            return read(value)
        except ValueError as exc:
            problems.append(f"{name}: got {value!r}: {exc}")
            return None

    values: dict[str, Any] = {
        "name": parse("name", normalise_space),
        "location": parse("location", normalise_space),
        "rating": parse("rating", parse_number),
        "ratings_count": parse("ratings_count", parse_int),
        "followers": parse("followers", parse_int),
        "member_since": parse("member_since", _member_since(profile, site)),
        "description": parse("description", normalise_space),
    }
    scale = profile.rating_scale
    rating = values["rating"]
    if rating is not None and scale is not None and rating > scale:
        problems.append(f"rating: got {raw.get('rating')!r}, above its scale of {scale}")
    if problems:
        raise SellerValidationError(
            f"site {site.name!r}, seller {seller_id!r} ({url}): {'; '.join(problems)}", raw
        )
    return SellerRecord(
        site=site.name,
        seller_id=seller_id,
        url=url,
        rating_scale=scale if rating is not None else None,
        raw=dict(raw),
        **values,
    )


@dataclass
class StoredSellers:
    """The sellers of one site's day as read from its WARC: records, and profiles held back
    (each a quarantine row: url, seller id, raw strings, error)."""

    records: list[SellerRecord] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)


def stored_sellers(site: SiteDefinition, warc: Path, wanted: dict[str, str]) -> StoredSellers:
    """The seller record of each profile URL in ``wanted`` (URL -> the seller id the lots
    named) whose page is in the WARC, following stored redirects (at most MAX_REDIRECTS
    hops); the later copy of a page wins, each seller id is read once. A profile that was
    not fetched (or failed) has no record: its lots still name the seller."""
    found = StoredSellers()
    if site.seller is None or not wanted:
        return found
    pages: dict[str, Page] = {}
    moved: dict[str, str] = {}
    for page in read_responses(warc, site.politeness.max_decoded_bytes):
        if page.kind != "seller" or page.error is not None:
            continue
        if page.location and 300 <= page.status < 400:
            target = absolute_url(page.url, page.location)
            if target is not None:
                moved[page.url] = target
        elif page.status == 200 and accepted(page.content_type, site.accepts("seller")):
            pages[page.url] = page_of(page.body, page.content_type)
    done: set[str] = set()
    for url, seller_id in wanted.items():
        final = url
        for _ in range(MAX_REDIRECTS):
            if final in pages or final not in moved:
                break
            final = moved[final]
        if seller_id in done or final not in pages:
            continue
        done.add(seller_id)
        try:
            found.records.append(normalise_seller(site, seller_id, final, pages[final]))
        except SellerValidationError as exc:
            found.held.append(
                {"url": final, "seller_id": seller_id, "raw": exc.raw, "error": str(exc)}
            )
    return found
