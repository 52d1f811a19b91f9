"""Small shared pieces of the demo marketplaces' pages: documents and data embedded in scripts.

Real marketplaces serialise their state into ``<script>`` elements the way
serialize-javascript does (``/`` and ``<`` written as ``\\u002F`` and ``\\u003C`` so no string
can close the script), and write HTML attributes with entities; the three renderers share
that here so their pages differ only where the platforms do.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from html import escape

_SCRIPT_ESCAPES = {"<": "\\u003C", ">": "\\u003E", "/": "\\u002F", "\u2028": "\\u2028",
                   "\u2029": "\\u2029"}  # fmt: skip


def e(value: object) -> str:
    """``value`` escaped for HTML text or a double-quoted attribute."""
    return escape(str(value), quote=True)


def number(amount: Decimal) -> int | float:
    """An amount as the JSON number a platform writes (``150``, ``125.5``)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def iso_z(moment: datetime, millis: bool = False) -> str:
    """A UTC time as ``2026-03-14T18:00:00Z`` (``...00.000Z`` with ``millis``)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.000Z" if millis else f"{text}Z"


def script_json(value: object) -> str:
    """``value`` as JSON text safe inside ``<script>`` (serialize-javascript's escapes)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "".join(_SCRIPT_ESCAPES.get(char, char) for char in text)


def document(title: str, body: str, head: str = "", lang: str = "en") -> str:
    """A complete UTF-8 HTML document."""
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{e(title)}</title>\n{head}</head>\n<body>\n{body}</body>\n</html>\n"
    )
