"""Field rules of site files: how one value is read from a page, and how it is parsed.

A rule is a selector chain (:mod:`sites.selectors`) and a parser name. Lot pages, follow-up
resources and seller profile pages are all read through rules, so this module is shared by
the site definition (:mod:`sites.loader`) and its seller section (:mod:`sites.sellers`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from sites.selectors import Selector

# "timestamp" is ISO 8601 with its zone ("2026-03-14T18:00:00Z"), "epoch-seconds" and
# "epoch-millis" a count since 1970-01-01 UTC: the forms marketplaces write times in;
# "datetime" localised text with a zone ("Mar 19, 2026 14:35:00 PDT"). "status" maps the
# page's words for a lot's state through the rule's ``statuses``; "boolean" reads true/false;
# "number" one decimal number, such as a rating ("4.8", "99.6% positive").
FieldParser = Literal[
    "text", "price", "estimate", "date", "int", "timestamp", "epoch-seconds", "epoch-millis",
    "datetime", "status", "boolean", "number",
]  # fmt: skip
TIME_PARSERS: tuple[FieldParser, ...] = ("timestamp", "epoch-seconds", "epoch-millis", "datetime")

# Where a lot is in its life. "closed-unknown": its end has passed and no page said how it
# ended (see tasks/normalise.py: a status is only ever read from the page, never inferred).
LotStatus = Literal["upcoming", "open", "sold", "unsold", "withdrawn", "closed-unknown"]
LOT_STATUSES: tuple[LotStatus, ...] = (
    "upcoming", "open", "sold", "unsold", "withdrawn", "closed-unknown",
)  # fmt: skip


def status_key(text: str) -> str:
    """How a status text is looked up in ``statuses``: case-folded, spaces collapsed."""
    return " ".join(text.split()).casefold()


# The character a house writes between whole units and their fraction ("1,200.50" or
# "1.200,50"); the other of the two then only groups thousands. See tasks/normalise.py.
DecimalSeparator = Literal[".", ","]


class FieldRule(BaseModel):
    """How to extract one field of a lot page, and how to parse what was extracted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    selector: Selector
    parser: FieldParser = "text"
    # StrictBool: only YAML's true/false; "yes" in quotes or 1 is a typo, not a boolean.
    many: StrictBool = Field(
        False, description="collect every match (e.g. image URLs), not the first"
    )
    required: StrictBool = False
    min_fill_rate: Annotated[
        float, Field(ge=0, le=1, description="required fields: share of lot pages to fill")
    ] = 0.9
    # ``from:`` in site files (a Python keyword): a follow-up resource to read instead of the
    # lot page, e.g. the bidding API's JSON.
    from_: str | None = Field(
        None,
        alias="from",
        description="the follow: resource this rule reads (default: the lot page)",
    )
    statuses: dict[str, LotStatus] | None = Field(
        None,
        description="parser: status only: each text the page writes for a lot's state "
        "(matched whole, case-insensitively) and the status it means",
    )

    @model_validator(mode="after")
    def _statuses_with_status_parser(self) -> FieldRule:
        if (self.parser == "status") != (self.statuses is not None):
            raise ValueError(
                "parser: status needs 'statuses', a mapping from each text the page writes "
                f"to one of {', '.join(LOT_STATUSES)}; other parsers take no 'statuses'"
            )
        seen: dict[str, str] = {}
        for text in self.statuses or {}:
            key = status_key(text)
            if not key:
                raise ValueError("statuses has an empty text; name the words the page writes")
            if key in seen:
                raise ValueError(f"statuses names {seen[key]!r} and {text!r}, which read alike")
            seen[key] = text
        return self

    def status_for(self, text: str) -> LotStatus | None:
        """The status ``text`` means by this rule's ``statuses``, or None if it is not listed."""
        table = {status_key(k): v for k, v in (self.statuses or {}).items()}
        return table.get(status_key(text))
