"""The ``search:`` section of a site file: keyword searches as a way to find lots.

Online marketplaces have no dated sale listing; the research group finds lots by searching
them for object names in several spellings (``mambila``, ``mambilla``) and taking the top N
results of each query. This section says how: the search URL (``{query}`` and ``{page}``,
URL-encoded), the queries, how many results per query, how a result page is read (lot links,
or lot ids plus a ``lot_url`` template, from HTML or JSON with the selector chains of
:mod:`sites.selectors`), which results to leave out (e.g. sponsored ones), and when to stop.
"""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import quote_plus, unquote_plus, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sites.selectors import Selector


class SearchResults(BaseModel):
    """How one result page is read: the lots it lists and those to leave out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lot_links: Selector | None = Field(None, description="links to the lots' pages")
    lot_ids: Selector | None = Field(None, description="the lots' ids, with lot_url")
    lot_url: str | None = Field(
        None, description="a lot page's URL from its id: '{lot_id}', relative to base_url"
    )
    exclude: Selector | None = Field(
        None,
        description="links (or ids) on the page to leave out, e.g. those of sponsored results",
    )

    @model_validator(mode="after")
    def _links_or_ids(self) -> SearchResults:
        if (self.lot_links is None) == (self.lot_ids is None):
            raise ValueError("give exactly one of 'lot_links' or 'lot_ids' (with 'lot_url')")
        if self.lot_ids is not None and (self.lot_url is None or "{lot_id}" not in self.lot_url):
            raise ValueError("lot_ids needs lot_url, a template with {lot_id}, e.g. /itm/{lot_id}")
        if self.lot_links is not None and self.lot_url is not None:
            raise ValueError("lot_url goes with lot_ids; lot_links are URLs already")
        return self


class Search(BaseModel):
    """Keyword searches: the URL template, the queries, and how far to follow each."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="relative to base_url; {query} and {page} are filled in")
    queries: Annotated[list[str], Field(min_length=1)]
    max_results: Annotated[int, Field(gt=0, le=10_000)] = 50
    max_pages: Annotated[int, Field(gt=0, le=1_000)] = 20
    first_page: Annotated[int, Field(ge=0)] = 1
    results: SearchResults

    @field_validator("url")
    @classmethod
    def _has_placeholders(cls, url: str) -> str:
        for placeholder in ("{query}", "{page}"):
            if placeholder not in url:
                raise ValueError(
                    f"{url!r} has no {placeholder}; e.g. /sch/i.html?_nkw={{query}}&_pgn={{page}}"
                )
        try:
            url.format(query="q", page=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{url!r}: only {{query}} and {{page}} may be in braces ({exc})"
            ) from None
        return url

    @field_validator("queries")
    @classmethod
    def _distinct_queries(cls, queries: list[str]) -> list[str]:
        cleaned = [" ".join(q.split()) for q in queries]
        if any(not q for q in cleaned):
            raise ValueError("an empty query would list the whole site; remove it")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError(f"a query is given twice: {cleaned}")
        return cleaned

    def page_url(self, base_url: str, query: str, page: int) -> str:
        """The absolute URL of result page ``page`` of ``query`` (the query URL-encoded)."""
        path = self.url.format(query=quote_plus(query), page=page)
        return base_url.rstrip("/") + "/" + path.lstrip("/")

    def query_of(self, base_url: str, url: str) -> tuple[str, int] | None:
        """The query and page a result page's URL was made for (the inverse of
        :meth:`page_url`), so a page read back from the WARC tells which query found what."""
        template = base_url.rstrip("/") + "/" + self.url.lstrip("/")
        pattern = re.escape(template)
        pattern = pattern.replace(re.escape("{query}"), "(?P<query>[^&#/]*)", 1)
        pattern = pattern.replace(re.escape("{page}"), "(?P<page>[0-9]+)", 1)
        match = re.fullmatch(pattern, url)
        if match is None:
            return None
        return unquote_plus(match["query"]), int(match["page"])

    def lot_url_for(self, base_url: str, lot_id: str) -> str:
        """A lot page's URL from its id, the id URL-encoded (it comes from the page)."""
        template = self.results.lot_url or "{lot_id}"
        path = template.replace("{lot_id}", quote_plus(lot_id, safe=""))
        if urlsplit(path).scheme:
            return path
        return base_url.rstrip("/") + "/" + path.lstrip("/")
