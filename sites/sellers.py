"""The ``seller:`` section of a site file: where a lot's seller's profile page is, and its fields.

The researchers study who sells what, so every lot names its seller (the lot field
``seller_id``) and each seller's profile is fetched once per crawl, into the WARC beside the
lots, and read into a seller record: name, location, rating (on the scale the platform uses),
number of ratings or reviews, followers, member since and description; other fields are kept
as raw text. The profile's URL is a template over the seller's id (eBay's ``/usr/{seller_id}``)
or a link the lot page holds (LiveAuctioneers' auctioneer link, whose slug no id gives).

Profile rules read one page with no lot id: a JSON path over a page that holds one seller
takes it with ``byId.* | [0]`` rather than a ``{lot_id}`` placeholder, which is refused here.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sites.fields import TIME_PARSERS, FieldParser, FieldRule
from sites.selectors import Selector, uses_lot_id

SELLER_ID = "{seller_id}"

SELLER_FIELDS: dict[str, tuple[FieldParser, ...]] = {
    "name": ("text",),
    "location": ("text",),
    "rating": ("number",),
    "ratings_count": ("int",),
    "followers": ("int",),
    "member_since": ("date", *TIME_PARSERS),
    "description": ("text",),
}
"""The seller record's fields and the parsers each may use (the first is the default); any
other field a profile rule names is kept as raw text in the seller's observation."""


class SellerProfile(BaseModel):
    """Where a lot's seller's profile page is, and how its fields are read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        None, description="a template with {seller_id}, relative to base_url (or absolute)"
    )
    link: Selector | None = Field(
        None, description="a selector chain over the lot page giving the profile's URL"
    )
    rating_scale: Annotated[int, Field(gt=0, le=1000)] | None = Field(
        None, description="what the rating is out of: 5 (stars), 100 (percent positive)"
    )
    fields: dict[str, FieldRule] = Field(description="rules over the profile page")

    @model_validator(mode="after")
    def _checked(self) -> SellerProfile:
        if (self.url is None) == (self.link is None):
            raise ValueError(
                "give exactly one of 'url' (a template with {seller_id}) or 'link' (a "
                "selector over the lot page)"
            )
        if self.url is not None and SELLER_ID not in self.url:
            raise ValueError(f"url {self.url!r} has no {SELLER_ID}, e.g. /usr/{SELLER_ID}")
        for name, rule in self.fields.items():
            where = f"fields.{name}"
            if rule.from_ is not None:
                raise ValueError(f"{where}: a profile rule reads the profile page, not from:")
            if rule.selector.json_ is not None and uses_lot_id(rule.selector.json_):
                raise ValueError(
                    f"{where}: a profile page has no lot id; take its one seller with "
                    "byId.* | [0] instead of {lot_id}"
                )
            parsers = SELLER_FIELDS.get(name)
            if parsers is not None and (rule.parser not in parsers or rule.many):
                raise ValueError(
                    f"{where} must have parser: {' or '.join(parsers)} (and not many) to fill "
                    f"the seller record; it has parser: {rule.parser}"
                )
            if parsers is None and rule.parser != "text":
                raise ValueError(
                    f"{where} is no seller record field ({', '.join(SELLER_FIELDS)}), so it "
                    "is kept as raw text: give it no parser"
                )
        if "rating" in self.fields and self.rating_scale is None:
            raise ValueError(
                "fields.rating needs rating_scale, what the rating is out of (5 for stars, "
                "100 for a percentage), or the numbers of two platforms cannot be compared"
            )
        return self

    def url_for(self, base_url: str, seller_id: str) -> str:
        """The profile URL of ``seller_id`` from the template, the id URL-encoded (it comes
        from a page and must not change the URL's structure)."""
        assert self.url is not None
        path = self.url.replace(SELLER_ID, quote(seller_id, safe=""))
        if path.startswith(("http://", "https://")):
            return path
        return base_url.rstrip("/") + "/" + path.lstrip("/")
