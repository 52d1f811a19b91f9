"""The selector of a site-file rule: a short chain of steps, validated when the file loads.

Marketplaces keep a lot's data in JavaScript and JSON inside the page (``window.__data = {…}``,
a ``data-props`` attribute, JSON-LD blocks) or serve it as a JSON API, so a selector is a
chain in the spirit of parsel's ``css() -> re() -> jmespath()``. Its steps, always applied in
this order whatever order the YAML mapping gives them:

1. at most one *source*: ``css:`` or ``xpath:`` (parsel syntax, e.g. ``script#x::text`` or
   ``div.x::attr(data-props)``), or ``jsonld: true``, every JSON-LD node of the page as one
   list (several ``<script type="application/ld+json">`` blocks, arrays and ``@graph``
   flattened), so ``json:`` can filter on ``"@type"``. With no source the chain starts from
   the whole response body (a JSON API's document, or the page's text for ``regex:``);
2. ``regex:`` (optional): the first group of every match in each text;
3. ``json:`` (optional): a JMESPath expression over each text read as JSON or, when it is not
   JSON, over each JavaScript object or array literal in it (unquoted keys, single quotes,
   trailing commas: read with chompjs). ``"{lot_id}"`` (a quoted identifier) and
   ``'{lot_id}'`` (a string) stand for the lot's id, substituted as a quoted JSON string so
   an id cannot change the expression: ``item."{lot_id}".title``.

Every step is checked here, before any request: bad CSS or XPath, a regex without a group,
invalid JMESPath (also an unknown function, a wrong number of arguments, nesting too deep to
evaluate), an unknown key, no step at all, two sources. The errors name the step;
:mod:`sites.loader` adds the file and the field. Evaluation is in :mod:`tasks.chains`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

import jmespath
import jmespath.exceptions
import jmespath.functions
import jmespath.parser
import parsel
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator, model_validator

STEPS = ("css", "xpath", "jsonld", "regex", "json")
"""Every key a selector may have, in the order the chain applies them."""

LOT_ID = "{lot_id}"
# A placeholder is a whole quoted identifier ("{lot_id}") or a whole raw string ('{lot_id}').
_QUOTED_LOT_ID = re.compile(r"\"\{lot_id\}\"|'\{lot_id\}'")
# An id that needs escaping in both forms, to check at load time that substitution is sound.
_SAMPLE_LOT_ID = "0'\"`\\"


class Selector(BaseModel):
    """A chain of extraction steps: an optional source, then ``regex:``, then ``json:``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    css: str | None = None
    xpath: str | None = None
    jsonld: StrictBool = False
    regex: str | None = None
    # ``json:`` in site files; the attribute is json_ as BaseModel has a (deprecated) .json().
    json_: str | None = Field(default=None, alias="json")

    @model_validator(mode="before")
    @classmethod
    def _known_steps(cls, data: object) -> object:
        """Name the chain's vocabulary instead of pydantic's "extra inputs" for a typo."""
        if not isinstance(data, dict):
            raise ValueError(
                f"a selector is a mapping of steps ({', '.join(STEPS)}), e.g. {{css: h1}};"
                f" got {data!r}"
            )
        unknown = [str(key) for key in data if key not in STEPS]
        if unknown:
            raise ValueError(
                f"unknown step(s) {', '.join(map(repr, unknown))}: a selector's steps are "
                f"{', '.join(STEPS)}"
            )
        if not any(data.get(key) not in (None, False) for key in STEPS):
            raise ValueError(
                f"a selector needs at least one step: {', '.join(STEPS)} (e.g. {{css: h1}}, or"
                " {json: lots[].id} for a JSON response)"
            )
        return data

    @field_validator("css")
    @classmethod
    def _valid_css(cls, css: str | None) -> str | None:
        # Compile now, so a typo fails when the file is loaded, not at the first page.
        if css is not None:
            _try_selector(lambda page: page.css(css), "CSS")
        return css

    @field_validator("xpath")
    @classmethod
    def _valid_xpath(cls, xpath: str | None) -> str | None:
        if xpath is not None:
            _try_selector(lambda page: page.xpath(xpath), "XPath")
        return xpath

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            compiled_regex(pattern)
        return pattern

    @field_validator("json_")
    @classmethod
    def _valid_jmespath(cls, expression: str | None) -> str | None:
        if expression is not None:
            check_expression(expression)
        return expression

    @model_validator(mode="after")
    def _one_source(self) -> Selector:
        if self.css is not None and self.xpath is not None:
            raise ValueError(
                "css and xpath both given: give exactly one of 'css' or 'xpath' (a chain "
                "starts from at most one of them)"
            )
        if self.jsonld and (self.css is not None or self.xpath is not None):
            raise ValueError(
                "jsonld: true reads the page's JSON-LD scripts itself; drop css/xpath, or "
                "drop jsonld and select one script with css and json"
            )
        if self.jsonld and self.regex is not None:
            raise ValueError(
                "jsonld: true yields JSON nodes, not text, so regex: has nothing to read; "
                "filter the nodes with json: instead"
            )
        return self

    @property
    def steps(self) -> list[tuple[str, str]]:
        """The chain's steps in the order they apply, as (key, value) pairs for reports."""
        pairs = [
            ("css", self.css),
            ("xpath", self.xpath),
            ("jsonld", "true" if self.jsonld else None),
            ("regex", self.regex),
            ("json", self.json_),
        ]
        return [(key, value) for key, value in pairs if value is not None]

    def describe(self) -> str:
        """The chain as one line, e.g. ``css: script::text | json: item.title``."""
        return " | ".join(f"{key}: {value}" for key, value in self.steps)


def _try_selector(query: Callable[[parsel.Selector], object], kind: str) -> None:
    """Run ``query`` on an empty page; raise ValueError (which pydantic reports) if invalid."""
    try:
        query(parsel.Selector(text="<html></html>"))
    # parsel raises ValueError for bad XPath; cssselect's errors subclass SyntaxError or
    # RuntimeError, which pydantic would not report as a validation error but let escape.
    except (SyntaxError, RuntimeError, ValueError) as exc:
        raise ValueError(f"not a valid {kind} selector: {exc}") from None


@functools.lru_cache(maxsize=512)
def compiled_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` compiled, or ValueError naming the pattern and the fix (no group, bad)."""
    try:
        compiled = re.compile(pattern)
    # Python's regex parser recurses per nesting level and rejects huge repeat counts with
    # OverflowError: both are a bad rule, to report like any other, not a traceback.
    except (re.error, RecursionError, OverflowError) as exc:
        detail = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ValueError(
            f"regex {_cut(pattern)!r} is not a valid regular expression: {detail}"
        ) from None
    if compiled.groups < 1:
        raise ValueError(
            f"regex {pattern!r} has no group: the chain keeps the first group, so put the "
            r"part to keep in parentheses, e.g. 'lotId: (\d+)'"
        )
    return compiled


def with_lot_id(expression: str, lot_id: str) -> str:
    """``expression`` with each ``"{lot_id}"`` / ``'{lot_id}'`` replaced by ``lot_id``, quoted.

    The id becomes a JSON string (ASCII, every quote and backslash escaped): as a quoted
    identifier for ``"{lot_id}"`` and as a JSON literal for ``'{lot_id}'``, so whatever the id
    holds (quotes, backticks, ``||``), it stays one key or one string of the expression.
    """
    quoted = json.dumps(lot_id, ensure_ascii=True)
    literal = "`" + quoted.replace("`", "\\u0060") + "`"
    return _QUOTED_LOT_ID.sub(lambda m: quoted if m[0].startswith('"') else literal, expression)


def uses_lot_id(expression: str) -> bool:
    """Whether ``expression`` needs a lot id (has a ``{lot_id}`` placeholder)."""
    return LOT_ID in expression


def check_expression(expression: str) -> None:
    """Raise ValueError naming ``expression`` and the fix unless it compiles as JMESPath."""
    if uses_lot_id(expression) and LOT_ID in _QUOTED_LOT_ID.sub("", expression):
        raise ValueError(
            f"json {expression!r}: write the lot id placeholder quoted, as a key "
            "(item.\"{lot_id}\".title) or as a string ([?id == '{lot_id}'])"
        )
    parsed = compiled_expression(with_lot_id(expression, _SAMPLE_LOT_ID))
    problem = _tree_problem(parsed.parsed)
    if problem:
        raise ValueError(f"json {_cut(expression)!r}: {problem}")


MAX_EXPRESSION_DEPTH = 64
"""Deepest nesting of a ``json:`` expression: jmespath evaluates it recursively, so a deeper
one (``a|a|a|…`` a thousand times) would end in RecursionError on every page."""


def _tree_problem(tree: dict[str, Any]) -> str | None:
    """What makes a compiled JMESPath tree fail on every document, else None.

    jmespath only looks functions up when it evaluates, so a misspelt or misused function
    would make the field silently empty on every page; it is refused here instead.
    """
    functions = jmespath.functions.Functions.FUNCTION_TABLE
    stack: list[tuple[dict[str, Any], int]] = [(tree, 1)]
    while stack:  # iterative: the tree may be deeper than Python's recursion limit
        node, depth = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH:
            return f"nested more than {MAX_EXPRESSION_DEPTH} levels deep; write it more simply"
        children = [child for child in node.get("children", []) if isinstance(child, dict)]
        if node.get("type") == "function_expression":
            name = str(node.get("value"))
            if name not in functions:
                return (
                    f"{name}() is not a JMESPath function (known: {', '.join(sorted(functions))})"
                )
            signature = functions[name]["signature"]
            variadic = bool(signature) and bool(signature[-1].get("variadic"))
            given, wanted = len(node.get("children", [])), len(signature)
            if given < wanted or (given > wanted and not variadic):
                least = "at least " if variadic else ""
                return f"{name}() takes {least}{wanted} argument(s), given {given}"
        stack.extend((child, depth + 1) for child in children)
    return None


@functools.lru_cache(maxsize=4096)
def compiled_expression(expression: str) -> jmespath.parser.ParsedResult:
    """``expression`` compiled once per process, or ValueError naming it and what is wrong."""
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        detail = " ".join(str(exc).split())
    except RecursionError:  # the parser recurses per nesting level: ((((a))))…
        detail = "nested too deeply"
    raise ValueError(
        f"json {_cut(expression)!r} is not a valid JMESPath expression: {_cut(detail, 300)}"
    ) from None


def _cut(text: str, width: int = 200) -> str:
    """``text`` cut to ``width`` characters for an error message (a rule may be huge)."""
    return text if len(text) <= width else text[: width - 1] + "…"
