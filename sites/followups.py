"""The ``follow:`` section of a site file: further resources to fetch for each lot.

Marketplaces keep part of a lot outside its page: eBay's description is a separate document
behind an iframe, Catawiki's bids come from a JSON bidding API. Each follow-up names one such
resource, found either from a template over the lot's id (``/buyer/api/v2/lots/{lot_id}/
bidding``) or from a link the lot page holds (the iframe's ``src``, read with a selector
chain). Field rules read from it with ``from: <name>``. Follow-ups are fetched right after
their lot page, under the site's politeness (rate limit, robots.txt, allowed hosts), stored
in the site's WARC with their name as the kind, and read back from there by processing.
"""

from __future__ import annotations

from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from sites.selectors import Selector

LOT_ID = "{lot_id}"


class FollowUp(BaseModel):
    """One further resource per lot: a URL template over its id, or a link on its page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(
        None, description="a template with {lot_id}, relative to base_url (or absolute)"
    )
    link: Selector | None = Field(
        None, description="a selector chain over the lot page giving the resource's URL"
    )

    @model_validator(mode="after")
    def _template_or_link(self) -> FollowUp:
        if (self.url is None) == (self.link is None):
            raise ValueError("give exactly one of 'url' (a template) or 'link' (a selector)")
        if self.url is not None and LOT_ID not in self.url:
            raise ValueError(
                f"url {self.url!r} has no {LOT_ID}; a template names the lot, e.g. "
                "/buyer/api/v2/lots/{lot_id}/bidding (a link on the lot page goes in 'link')"
            )
        return self

    def url_for(self, base_url: str, lot_id: str) -> str:
        """The resource's URL for the lot ``lot_id`` (a template follow-up), the id
        URL-encoded: it comes from a page and must not change the URL's structure."""
        assert self.url is not None
        path = self.url.replace(LOT_ID, quote(lot_id, safe=""))
        if path.startswith(("http://", "https://")):
            return path
        return base_url.rstrip("/") + "/" + path.lstrip("/")
