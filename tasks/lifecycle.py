"""Where a lot is in its life, read only from what its page says, and whether it sold.

An auction house's result page shows a hammer price or an unsold word ("Unsold", "Invendu",
"Passed"); a marketplace's lot page says its state in its own words (Catawiki's bidding API
``closed``/``sold``, LiveAuctioneers' ``lotStatus``), which a site file maps to a status with
``parser: status`` and ``statuses:``. The status is never inferred from what is absent: a lot
whose page shows no price and names no state has no status (``None``), not "unsold"; and
bidding that is still open is "open", never "not sold". ``sold`` follows from the status:
true for sold, false for unsold or withdrawn, unknown (None) otherwise.

A page that contradicts itself (a final price beside "open", an unsold word beside "sold")
is a problem for the lot, which is then held back with its raw text, never resolved by
picking one side.
"""

from __future__ import annotations

from typing import NamedTuple

from sites.fields import LotStatus

SOLD_BY_STATUS: dict[LotStatus, bool | None] = {
    "upcoming": None,
    "open": None,
    "sold": True,
    "unsold": False,
    "withdrawn": False,
    "closed-unknown": None,
}
"""Whether a lot of each status sold: None where the result is not (yet) known."""


def sold_of(status: LotStatus | None) -> bool | None:
    """Whether a lot with ``status`` sold (None: not known, e.g. open, or no status)."""
    return None if status is None else SOLD_BY_STATUS[status]


class Lifecycle(NamedTuple):
    """A lot's status and sold flag, or the contradiction that left them unread."""

    status: LotStatus | None
    sold: bool | None
    problem: str | None = None


def lot_status(stated: LotStatus | None, price_shown: bool, unsold_shown: bool) -> Lifecycle:
    """The status from the page's stated status (a ``status`` field) and its result text.

    ``price_shown``: the ``price`` field read as an amount (a final or hammer price);
    ``unsold_shown``: it read as one of the site's unsold markers. Without a stated status a
    price means sold and an unsold marker unsold; with one, those must agree with it.
    """
    if stated is None:
        status: LotStatus | None = "sold" if price_shown else "unsold" if unsold_shown else None
        return Lifecycle(status, sold_of(status))
    if price_shown and stated != "sold":
        return Lifecycle(
            None, None, f"a result that agrees with the lot's status {stated!r}, not a final price"
        )
    if unsold_shown and stated == "sold":
        return Lifecycle(
            None, None, "a result that agrees with the lot's status 'sold', not an unsold word"
        )
    return Lifecycle(stated, sold_of(stated))
