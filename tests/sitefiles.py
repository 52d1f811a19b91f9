"""Small site definitions built in tests, for unit tests of extraction and normalisation."""

from __future__ import annotations

from typing import Any

from sites.loader import SiteDefinition


def market_site(fields: dict[str, Any], **settings: Any) -> SiteDefinition:
    """A marketplace found by search (EUR, English), with a title rule and ``fields``;
    ``settings`` override top-level keys of the site file."""
    return SiteDefinition.model_validate(
        {
            "name": "market",
            "house": "Market",
            "base_url": "https://market.example",
            "currency": "EUR",
            "date_languages": ["en"],
            "decimal_separator": ".",
            "search": {
                "url": "/s?q={query}&p={page}",
                "queries": ["mambila"],
                "results": {"lot_links": {"css": "a::attr(href)"}},
            },
            "fields": {"title": {"selector": {"css": "h1"}, "required": True}, **fields},
            **settings,
        }
    )
