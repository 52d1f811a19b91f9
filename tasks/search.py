"""Keyword searches: which lots each query found, merged across result pages and queries.

A search-driven crawl asks each query of the site's ``search:`` section for its result pages,
in order, and takes the top ``max_results`` lots of each; a lot found by two queries (two
spellings of one name) is one lot, fetched once, and remembers both queries. A query stops at
an empty page, a page that adds no new result, ``max_results`` or ``max_pages``.

:class:`SearchMerge` holds that rule, so the crawl (deciding what to fetch) and processing
(replaying the result pages stored in the WARC, to record which queries found each lot) apply
exactly the same one: ``reprocess`` gives the same answer as the crawl did.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urldefrag

from sites.loader import SiteDefinition


def lot_identity(site: SiteDefinition, url: str) -> str:
    """What makes two result links one lot: the platform's id where ``lot_id.url_regex``
    reads it from the URL (slugs and tracking parameters differ), else the URL itself."""
    rule = site.lot_id
    if rule is not None and rule.url_regex is not None:
        match = re.search(rule.url_regex, url)
        if match and match[1]:
            return f"id:{match[1]}"
    return f"url:{urldefrag(url).url}"


@dataclass
class SearchMerge:
    """The lots the site's queries found so far, in the order first found, with the queries
    (in the site file's order) that found each; one instance per crawl or replay."""

    site: SiteDefinition
    urls: dict[str, str] = field(default_factory=dict)  # identity -> the URL first found
    found_by: dict[str, list[str]] = field(default_factory=dict)  # identity -> queries
    _per_query: dict[str, list[str]] = field(default_factory=dict)
    _done: set[str] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)

    def add(self, query: str, page: int, links: list[str]) -> list[str]:
        """Take result page ``page`` of ``query`` (its lot links, in page order); return the
        links of lots no query had found yet, which the crawl must fetch.

        After this call :meth:`wants` says whether the query goes on to its next page.
        """
        search = self.site.search
        assert search is not None
        if query in self._done:
            return []
        taken = self._per_query.setdefault(query, [])
        before = len(taken)
        fresh = []
        for link in links:
            identity = lot_identity(self.site, link)
            if identity in taken:
                continue
            if len(taken) >= search.max_results:
                break
            taken.append(identity)
            if identity not in self.urls:
                self.urls[identity] = link
                fresh.append(link)
            self.found_by.setdefault(identity, []).append(query)
        last_page = search.first_page + search.max_pages - 1
        if len(taken) == before or len(taken) >= search.max_results:
            self._done.add(query)
        elif page >= last_page:
            self._done.add(query)
            self.warnings.append(
                f"query {query!r} stopped at search.max_pages ({search.max_pages}) with "
                f"{len(taken)} of its {search.max_results} results; raise search.max_pages in "
                f"sites/{self.site.name}.yaml if more are wanted"
            )
        return fresh

    def wants(self, query: str) -> bool:
        """Whether ``query`` should fetch its next result page."""
        return query not in self._done

    def queries_of(self, url: str) -> list[str]:
        """The queries that found the lot at ``url`` (none: not found by search)."""
        return list(self.found_by.get(lot_identity(self.site, url), []))
