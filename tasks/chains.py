"""Evaluate a selector chain (:mod:`sites.selectors`) on one response: an HTML page or JSON.

A :class:`Page` holds one response body as text and knows whether it is a JSON document or an
HTML page (from its content type). It parses lazily and remembers what it parsed, so the
dozen fields that read one ``window.__data`` script or one JSON API document parse it once.

Each step maps a list of values to a list of values:

- the source: ``css:``/``xpath:`` give the text of every match (an element's whole text, or
  its ``href`` for link selectors), ``jsonld: true`` one list of every JSON-LD node (of the
  page's scripts, or of a JSON-LD response), no source the whole body (on a JSON response,
  css/xpath find nothing);
- ``regex:`` the first group of every match in each text;
- ``json:`` reads each text as JSON, else each JavaScript object or array literal in it
  (chompjs; a bare ``undefined`` becomes null), and applies the JMESPath expression to each
  document.

What comes out is a list of strings, as CSS selectors always gave: JSON strings as they are
(ASCII whitespace runs made one space, as for HTML text), numbers as their JSON text
(``1200``, ``12.5``), true/false as ``true``/``false``, objects as compact JSON text; null
and missing values yield nothing and lists are flattened. A step that finds nothing on a
page (no match, a text that is neither JSON nor JavaScript, a key the document lacks) makes
the value empty, so the field is missing and the fill-rate checks apply; it never raises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import chompjs
import jmespath.exceptions
import parsel

from sites.selectors import (
    Selector,
    compiled_expression,
    compiled_regex,
    uses_lot_id,
    with_lot_id,
)

# Only ASCII whitespace: Python's \s and str.split() would also swallow U+00A0 and U+202F.
_ASCII_SPACE = re.compile(r"[ \t\n\r\f\v]+")
_ASCII_SPACE_CHARS = " \t\n\r\f\v"
_JSON_MEDIA_TYPE = re.compile(r"^(application|text)/([a-z0-9.+-]*\+)?json$")
JSONLD_SCRIPTS = 'script[type="application/ld+json"]::text'

PageKind = Literal["html", "json"]
T = TypeVar("T")


def tidy_space(text: str) -> str:
    """Collapse runs of ASCII whitespace to one space and trim them; keep no-break spaces.

    Markup indentation is noise, but the no-break spaces a house puts in "1 200 €" are part of
    the raw value kept for audit.
    """
    return _ASCII_SPACE.sub(" ", text).strip(_ASCII_SPACE_CHARS)


def kind_of(content_type: str | None) -> PageKind:
    """``json`` for application/json, text/json and ``+json`` types; ``html`` for the rest."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    return "json" if _JSON_MEDIA_TYPE.match(media_type) else "html"


@dataclass
class Page:
    """One response's text and what it is, with what the chains parsed from it so far."""

    text: str
    kind: PageKind = "html"
    _memo: dict[object, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_text(cls, text: str, content_type: str | None = None) -> Page:
        """The page of a decoded body served as ``content_type`` (HTML when unknown)."""
        return cls(text, kind_of(content_type))

    @property
    def html(self) -> parsel.Selector:
        """The page parsed as HTML; an empty body is an empty page (parsel needs text)."""
        return self.remember("html", lambda: parsel.Selector(text=self.text or "<html></html>"))

    def documents(self, text: str) -> list[Any]:
        """``text`` read as one JSON value, else every JavaScript literal in it (maybe none)."""
        return self.remember(("documents", text), lambda: read_documents(text))

    def remember(self, key: object, compute: Callable[[], T]) -> T:
        """``compute()``, once per page and ``key``: the parse of a script, a css result."""
        if key not in self._memo:
            self._memo[key] = compute()
        return cast(T, self._memo[key])


def read_documents(text: str) -> list[Any]:
    """The JSON documents in ``text``: itself if it is JSON, else its JavaScript literals.

    ``window.__data = {item: {'1': {title: 'Mask',},},};`` holds one literal; an eBay-like
    ``$rwidgets(["a", {…}], ["b", {…}])`` call holds one per argument. Text with neither
    yields no document (the field is then missing), never an error; so does a document
    nested deeper than Python's recursion limit (a hostile page: ``[[[[…]]]]`` 5000 deep).
    """
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    except RecursionError:
        return []
    try:
        literals: Iterable[Any] = chompjs.parse_js_objects(text)
        if "undefined" not in text:  # nothing to rewrite: skip the walk (5% of a big page)
            return [doc for doc in literals if doc is not None]
        return [_defined(doc) for doc in literals if doc is not None]
    except (ValueError, RecursionError):  # chompjs's own errors are ValueErrors; json's too
        return []


def _defined(value: Any) -> Any:
    """``value`` with JavaScript's ``undefined`` as null, as JSON would have it.

    chompjs reads a bare ``undefined`` as the string "undefined" (LiveAuctioneers writes it
    for unset values), which would fill a field with that word instead of leaving it
    missing. A quoted 'undefined' cannot be told apart after parsing, and goes the same way.
    """
    if isinstance(value, dict):
        return {key: _defined(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_defined(item) for item in value]
    return None if value == "undefined" else value


def jsonld_nodes(documents: Iterable[Any]) -> list[Any]:
    """Every JSON-LD node of the given blocks: arrays and ``@graph`` flattened, in order.

    A block ``{"@context": …, "@graph": [a, b]}`` gives a and b (and the block itself too
    when it has a ``@type`` of its own); an array block gives its items.
    """
    nodes: list[Any] = []
    for document in documents:
        if isinstance(document, list):
            nodes.extend(jsonld_nodes(document))
        elif isinstance(document, dict):
            graph = document.get("@graph")
            if graph is None:
                nodes.append(document)
                continue
            if "@type" in document:
                nodes.append({k: v for k, v in document.items() if k != "@graph"})
            nodes.extend(jsonld_nodes(graph if isinstance(graph, list) else [graph]))
    return nodes


def json_strings(value: Any) -> list[str]:
    """A JMESPath result as the strings a field receives (see the module's docstring)."""
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, int | float):
        return [json.dumps(value)]
    if isinstance(value, str):
        text = tidy_space(value)
        return [text] if text else []
    if isinstance(value, list):
        return [text for item in value for text in json_strings(item)]
    return [json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=False)]


@dataclass(frozen=True)
class StepResult:
    """What one step of a chain produced, for ``sites check``: its key, value and outputs."""

    step: str
    expression: str
    values: list[Any]


def source_texts(page: Page, selector: Selector, *, links: bool = False) -> list[str]:
    """What the chain's css/xpath finds (untidied), or the whole body when it has none."""
    if selector.css is None and selector.xpath is None:
        return [] if not page.text or page.text.isspace() else [page.text]  # isspace: no copy
    if page.kind == "json":
        return []  # a JSON document has no elements: select it with json: alone
    key = ("source", selector.css, selector.xpath, links)
    return page.remember(key, lambda: _select(page.html, selector, links=links))


def _select(html: parsel.Selector, selector: Selector, *, links: bool) -> list[str]:
    """Every non-blank string the css/xpath of ``selector`` finds, in document order.

    A match that is an element (a CSS selector without ``::text``/``::attr``, or an XPath that
    selects elements) yields its whole text, ``string()``, not its HTML; with ``links`` it
    yields the element's ``href`` instead, so ``a.next`` works as a next-page selector.
    """
    if selector.css is not None:
        found = html.css(selector.css)
    else:
        found = html.xpath(selector.xpath or ".")
    values: list[str] = []
    for match in found:
        # Text and attribute matches (and XPath numbers) have a plain Python value as root;
        # element matches have an lxml element.
        if isinstance(match.root, str | int | float):
            value = str(match.get())
        elif links:
            value = match.attrib.get("href", "")
        else:
            value = match.xpath("string()").get() or ""
        if value.strip(_ASCII_SPACE_CHARS):
            values.append(value)
    return values


def evaluate(
    page: Page,
    selector: Selector,
    *,
    lot_id: str | None = None,
    links: bool = False,
    trace: list[StepResult] | None = None,
) -> list[str]:
    """Every string ``selector``'s chain yields on ``page``, in order (maybe none).

    ``lot_id`` fills the ``{lot_id}`` placeholders of the ``json:`` step; without one such an
    expression finds nothing. With ``trace``, each step's outputs are appended to it.
    """

    def record(step: str, expression: str, values: list[Any]) -> None:
        if trace is not None:
            trace.append(StepResult(step, expression, values))

    texts: list[str] = []
    documents: list[Any] | None = None  # set once the chain holds JSON values, not text
    if selector.jsonld:
        # An HTML page's JSON-LD scripts, or a JSON-LD response (application/ld+json) itself.
        blocks = source_texts(page, _JSONLD) if page.kind == "html" else [page.text]
        nodes = jsonld_nodes(doc for text in blocks for doc in page.documents(text))
        record("jsonld", "true", nodes)
        documents = [nodes] if nodes else []
    else:
        texts = source_texts(page, selector, links=links)
        if selector.css is not None or selector.xpath is not None:
            record(*selector.steps[0], texts)
        elif page.kind == "json" and selector.regex is None:
            documents = page.documents(page.text) if texts else []
            record("body", "JSON document", documents)
        else:
            record("body", "text", texts)
    if selector.regex is not None:
        pattern = compiled_regex(selector.regex)
        texts = [match[1] for text in texts for match in pattern.finditer(text) if match[1]]
        record("regex", selector.regex, texts)
    if selector.json_ is None:
        if documents is not None:  # a JSON response or JSON-LD without json: the whole value
            return [text for document in documents for text in json_strings(document)]
        return [tidied for text in texts if (tidied := tidy_space(text))]
    if documents is None:
        documents = [doc for text in texts for doc in page.documents(text)]
        record("parse", "as JSON, else JavaScript literals", documents)
    expression = selector.json_
    if uses_lot_id(expression):
        if lot_id is None:
            record("json", expression, ["(no lot id to fill {lot_id} with)"])
            return []
        expression = with_lot_id(expression, lot_id)
    compiled = compiled_expression(expression)
    results: list[Any] = []
    for document in documents:
        try:
            found = compiled.search(document)
        except jmespath.exceptions.JMESPathError:  # e.g. sum() over strings: nothing found
            found = None
        if found is not None and found != []:
            results.append(found)
    record("json", expression, results)
    return [text for result in results for text in json_strings(result)]


_JSONLD = Selector(css=JSONLD_SCRIPTS)


def decode_html(body: bytes, content_type: str) -> str:
    """The page's text, decoded with the charset its Content-Type names (UTF-8 otherwise).

    Used both when crawling and when processing stored pages, so both read the same text.
    """
    charset = "utf-8"
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def page_of(body: bytes, content_type: str) -> Page:
    """A response as the selector chains read it: its text, and HTML or JSON by its type.

    The crawl and the processing of stored pages both read pages through this."""
    return Page.from_text(decode_html(body, content_type), content_type)
