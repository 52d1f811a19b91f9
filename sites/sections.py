"""Site-file sections for marketplaces: how a lot is identified, and which content types a
site serves for each kind of page.

A marketplace's lot URL carries a slug and tracking parameters (``/item/123_mask-mambila``,
``/itm/123?hash=…``) that change while the lot stays the same; the platform's lot id does not.
``lot_id:`` says where that id is, so the database key is (site, lot id) and a renamed slug
never makes a second lot. Without it a lot is keyed by its URL's last path segment and query,
as the auction houses' lots are.

The crawler refuses a response whose content type the site does not declare for that kind of
page (an HTML error page instead of JSON, a PDF instead of a lot page); ``content_types:``
declares them, e.g. ``search: [application/json]`` for a JSON search API.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The kinds of page every site has, and what they are served as unless the site says more.
DEFAULT_CONTENT_TYPES: dict[str, tuple[str, ...]] = {
    "listing": ("text/html",),
    "search": ("text/html",),
    "lot": ("text/html",),
    "seller": ("text/html",),
    "image": ("image/",),
}
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/([a-z0-9][a-z0-9!#$&^_.+-]*)?$")
MAX_LOT_ID_LENGTH = 200


class LotIdentity(BaseModel):
    """Where a lot's platform id is: the first group of a regex over its URL, or a field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url_regex: str | None = Field(
        None, description="searched in the lot page's URL; its first group is the id"
    )
    field: str | None = Field(None, description="a field rule whose value is the id")

    @field_validator("url_regex")
    @classmethod
    def _compiles_with_a_group(cls, pattern: str | None) -> str | None:
        if pattern is None:
            return None
        try:
            compiled = re.compile(pattern)
        except (re.error, RecursionError, OverflowError) as exc:  # the latter two: too deep, huge
            detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ValueError(f"not a valid regular expression: {detail}") from None
        if compiled.groups < 1:
            raise ValueError(
                f"{pattern!r} has no group: put the id in parentheses, e.g. '/item/([0-9]+)'"
            )
        return pattern

    @model_validator(mode="after")
    def _exactly_one(self) -> LotIdentity:
        if (self.url_regex is None) == (self.field is None):
            raise ValueError("give exactly one of 'url_regex' or 'field'")
        return self

    def read(self, url: str, raw: dict[str, str | list[str] | None]) -> str:
        """The lot id of the lot page at ``url`` with extracted values ``raw``.

        Raises ValueError naming what was expected when there is none (or an absurd one).
        """
        if self.url_regex is not None:
            match = re.search(self.url_regex, url)
            found = match[1] if match else None
            where = f"a URL matching lot_id.url_regex {self.url_regex!r}"
        else:
            value = raw.get(self.field or "")
            found = value if isinstance(value, str) else None
            where = f"a lot id in field {self.field!r} (lot_id.field)"
        found = (found or "").strip()
        if not found or len(found) > MAX_LOT_ID_LENGTH or any(c.isspace() for c in found):
            raise ValueError(f"expected {where}; got {found[:80]!r} from {url}")
        return found


MediaTypes = Annotated[list[str], Field(min_length=1)]


def check_content_types(declared: dict[str, MediaTypes]) -> dict[str, MediaTypes]:
    """Refuse an entry that is not a media type (``type/subtype``) or a prefix (``image/``)."""
    for kind, types in declared.items():
        for media_type in types:
            if not _MEDIA_TYPE.match(media_type.strip().lower()):
                raise ValueError(
                    f"content_types.{kind}: {media_type!r} is not a media type such as "
                    "'application/json' or a prefix such as 'image/'"
                )
    return {kind: [t.strip().lower() for t in types] for kind, types in declared.items()}


def accepted_types(declared: dict[str, MediaTypes], kind: str) -> tuple[str, ...]:
    """What a page of ``kind`` may be served as: the site's declaration, else the default
    (HTML for pages, ``image/`` for images; a kind of its own, e.g. a follow-up, is JSON or
    HTML unless declared)."""
    if kind in declared:
        return tuple(declared[kind])
    return DEFAULT_CONTENT_TYPES.get(kind, ("text/html", "application/json"))
