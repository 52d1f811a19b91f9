"""``auction-pipeline sites check FILE [--page PAGE]``: validate a site file, try its selectors.

The tool a research software engineer uses while writing or fixing a site definition: the
file is validated as the pipeline would (errors name the file, the field and the step, before
any request), and given a saved page or a URL of any kind (a lot page, a listing or search
result page, a follow-up resource; HTML or JSON) it shows, rule by rule, what each step of its
selector chain produced (the matched text, the regex group, the parsed document, the JSON
value) and what the parser makes of it.

A lot page is read as the crawl and processing read it: its lot id and database key, then its
follow-ups (fetched through the same polite fetcher when the page is a URL, or supplied from
files with ``--resource NAME=FILE``), each with the fields read ``from:`` it. A follow-up
neither fetched nor supplied leaves its fields missing, as processing does.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sites.fields import FieldRule
from sites.loader import SiteDefinition, load_site_file
from sites.selectors import Selector
from tasks.chains import Page, StepResult, evaluate
from tasks.extract import (
    RawLot,
    Traces,
    extract_listing,
    extract_lot,
    extract_results,
    follow_up_urls,
)

if TYPE_CHECKING:
    from tasks.politeness import PoliteFetcher

PAGE_KINDS = ("lot", "listing", "search", "seller")
FOLLOW = "follow:"
"""``--kind follow:NAME`` checks the follow-up resource NAME of the site on its own."""


class CheckError(ValueError):
    """The options of ``sites check`` do not fit the site file; the message says what fits."""


def parse_resources(texts: list[str]) -> dict[str, Path]:
    """``--resource NAME=FILE`` arguments as {name: path}; CheckError for one that is not
    NAME=FILE or names a follow-up twice."""
    resources: dict[str, Path] = {}
    for text in texts:
        name, sep, file = (part.strip() for part in text.partition("="))
        if not sep or not name or not file:
            raise CheckError(
                f"--resource {text!r}: expected NAME=FILE, a follow-up's name and a saved copy "
                "of it, e.g. --resource bidding=bidding.json"
            )
        if name in resources:
            raise CheckError(f"--resource {name}: given twice ({resources[name]} and {file})")
        resources[name] = Path(file)
    return resources


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _kind_name(kind: str) -> str:
    """What a page of ``kind`` is called in the report (``follow-up bidding``)."""
    return f"follow-up {kind.removeprefix(FOLLOW)}" if kind.startswith(FOLLOW) else kind


def _check_kind(site: SiteDefinition, kind: str) -> str:
    """The fetch kind for ``--kind`` (lot, listing, search or a follow-up's name)."""
    known = ", ".join(site.follow) or "none"
    if kind.startswith(FOLLOW):
        name = kind.removeprefix(FOLLOW)
        if name not in site.follow:
            raise CheckError(
                f"--kind {kind}: the site has no follow-up {name!r} (its follow-ups: {known})"
            )
        return name
    if kind not in PAGE_KINDS:
        raise CheckError(
            f"--kind {kind!r}: expected one of {', '.join(PAGE_KINDS)} or follow:NAME for a "
            f"follow-up resource (this site's follow-ups: {known})"
        )
    return kind


def _read_text(site: SiteDefinition, path: Path, what: str) -> Page:
    """A saved page as a :class:`Page`: JSON when its name ends in ``.json``, else HTML.

    Capped at the site's ``max_decoded_bytes``, as a fetched page would be.
    """
    cap = site.politeness.max_decoded_bytes
    try:
        size = path.stat().st_size
        if size > cap:
            raise CheckError(
                f"{what} {path} has {size} bytes, more than the site's "
                f"politeness.max_decoded_bytes ({cap}) lets a page have"
            )
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {what} {path}: {exc.strerror}") from exc
    content_type = "application/json" if path.suffix.lower() == ".json" else "text/html"
    return Page.from_text(text, content_type)


def _read_resources(
    site: SiteDefinition, kind: str, resources: Mapping[str, Path]
) -> dict[str, tuple[Path, Page]]:
    """The ``--resource`` files, read before any request; CheckError for a name not in
    ``follow:`` or for resources given with a page that is not a lot page."""
    if resources and kind != "lot":
        raise CheckError("--resource supplies a lot page's follow-ups: use it with --kind lot")
    read: dict[str, tuple[Path, Page]] = {}
    for name, path in resources.items():
        if name not in site.follow:
            raise CheckError(
                f"--resource {name}={path}: the site has no follow-up {name!r} (its "
                f"follow-ups: {', '.join(site.follow) or 'none'})"
            )
        read[name] = (path, _read_text(site, path, f"--resource {name}"))
    return read


def _describe_page(page: Page) -> str:
    return "(a JSON document)" if page.kind == "json" else "(an HTML page)"


def _fetch(
    fetcher: PoliteFetcher, site: SiteDefinition, url: str, kind: str
) -> tuple[Page, str, str]:
    """``url`` fetched as a page of ``kind`` (as the crawl fetches it): the page, its final
    URL (after redirects) and a line saying what answered."""
    from tasks.chains import page_of

    fetched = fetcher.get(url, kind=kind, expect=site.accepts(kind))
    page = page_of(fetched.body, fetched.content_type)
    moved = f" from {fetched.url}" if fetched.url != url else ""
    answer = f"HTTP {fetched.exchange.status}, {fetched.content_type or 'no content type'}"
    return page, fetched.url, answer + moved


def _shown(values: list[object], width: int = 100) -> str:
    """A step's outputs in one line: how many, and the first ones as compact JSON, cut."""
    try:
        text = json.dumps(values, ensure_ascii=False, separators=(",", ":"), default=str)
    except (RecursionError, ValueError):
        text = "(nested too deeply to show)"
    return f"({len(values)}) {text if len(text) <= width else text[: width - 1] + '…'}"


def _step_lines(trace: list[StepResult], indent: str) -> list[str]:
    """Each step's outputs, so a researcher sees where a chain stops finding anything."""
    lines = []
    before: list[object] = []
    for step in trace:
        line = f"{indent}{step.step:<6} {_shown(step.values)}"
        if step.step == "parse" and before and not step.values:
            line += "  <- the text is neither JSON nor a JavaScript literal"
        elif step.step == "body" and step.expression == "JSON document" and not step.values:
            line += "  <- the body is empty, or neither JSON nor a JavaScript literal"
        lines.append(line)
        before = step.values
    return lines


def _chain_lines(
    label: str, selector: Selector, page: Page, *, links: bool = False, lot_id: str | None = None
) -> list[str]:
    """One rule of a listing, search or follow-up link: its chain and each step's outputs."""
    trace: list[StepResult] = []
    found = evaluate(page, selector, links=links, lot_id=lot_id, trace=trace)
    lines = [f"  {label:<13} {'ok' if found else 'NOTHING':<8} {selector.describe()}"]
    lines.extend(_step_lines(trace, f"  {'':<13}   "))
    return lines


def _field_lines(
    name: str, rule: FieldRule, value: object, trace: list[StepResult], absent: str | None = None
) -> list[str]:
    """One field: whether it was found, its chain, each step's outputs and the raw value.

    ``absent`` says why its resource could not be read (a follow-up not fetched)."""
    flag = "MISSING" if value in (None, [], "") else "ok"
    lines = [f"  {name:<13} {flag:<8} {rule.selector.describe()}"]
    if absent:
        lines.append(f"  {'':<13}   ({absent}: nothing to read)")
    lines.extend(_step_lines(trace, f"  {'':<13}   "))
    lines.append(f"  {'':<13} -> {value!r}")
    return lines


def _identity_lines(site: SiteDefinition, url: str, raw: RawLot, hint: str) -> list[str]:
    """The lot id the site's ``lot_id`` rule reads and the database key, or why there is none
    (with ``hint`` for a saved page read as if at the site's base URL)."""
    from tasks.normalise import lot_key_for

    rule = site.lot_id
    if rule is None:
        where = "no lot_id: rule; a lot is keyed by its URL's last segment and query"
        lines = [f"  lot id: ({where})"]
    else:
        where = (
            f"lot_id.url_regex {rule.url_regex!r} over {url}"
            if rule.url_regex is not None
            else f"lot_id.field {rule.field!r}"
        )
        try:
            lines = [f"  lot id: {rule.read(url, raw)!r} ({where})"]
        except ValueError as exc:
            lines = [f"  lot id: NONE: {exc}{hint}"]
    try:
        key = lot_key_for(site, raw, url)
    except ValueError:
        key = ""
    if key:
        lines.append(f"  database key: site {site.name!r}, lot_key {key!r}")
    else:
        lines.append("  database key: NONE: the lot cannot be stored (see the lot id)")
    return lines


@dataclass(frozen=True)
class _FollowUp:
    """One follow-up of the lot page: where it is, what became of it, and its page if read."""

    name: str
    url: str | None
    status: str
    page: Page | None
    link_lines: list[str]


def _follow_ups(
    site: SiteDefinition,
    page: Page,
    url: str,
    raw: RawLot,
    fetcher: PoliteFetcher | None,
    supplied: Mapping[str, tuple[Path, Page]],
) -> list[_FollowUp]:
    """Each follow-up of the lot page, as the crawl finds it (:func:`follow_up_urls`):
    supplied from a file, else fetched (a URL page), else not fetched (a saved page)."""
    from tasks.politeness import CrawlAborted, FetchError

    lot_id: str | None = None
    if site.lot_id is not None:
        with contextlib.suppress(ValueError):
            lot_id = site.lot_id.read(url, raw)
    urls = follow_up_urls(site, page, url, raw)
    found = []
    for name, follow in site.follow.items():
        link_lines = []
        if follow.link is not None:
            link_lines = _chain_lines("link", follow.link, page, links=True, lot_id=lot_id)
        where = urls.get(name)
        status, resource = "", None
        if name in supplied:
            path, resource = supplied[name]
            status = f"supplied from {path} {_describe_page(resource)}"
        elif where is None:
            why = "the lot id is unknown" if follow.link is None else "its link found nothing"
            status = f"not fetched: no URL ({why})"
        elif fetcher is None:
            status = f"not fetched (a saved page: give it with --resource {name}=FILE)"
        else:
            try:
                resource, _, status = _fetch(fetcher, site, where, name)
                status = f"{status} {_describe_page(resource)}"
            except CrawlAborted:
                raise  # the site as a whole refuses us: as the crawl, stop
            except FetchError as exc:
                status = f"not fetched: {exc}"
        found.append(_FollowUp(name, where, status, resource, link_lines))
    return found


def _describe_lot(
    site: SiteDefinition,
    page: Page,
    url: str,
    fetcher: PoliteFetcher | None,
    supplied: Mapping[str, tuple[Path, Page]],
    hint: str = "",
) -> list[str]:
    from tasks.normalise import LotValidationError, normalise_lot

    follow_ups = _follow_ups(site, page, url, extract_lot(site, page, url), fetcher, supplied)
    resources = {f.name: f.page for f in follow_ups if f.page is not None}
    traces: Traces = {}
    raw = extract_lot(site, page, url, traces=traces, resources=resources)
    lines = [f"  {_describe_page(page)}", *_identity_lines(site, url, raw, hint)]
    for name, rule in site.fields.items():
        if rule.from_ is None:
            lines.extend(_field_lines(name, rule, raw.get(name), traces.get(name, [])))
    for follow in follow_ups:
        lines.append(f"{_kind_name(FOLLOW + follow.name)}: {follow.url or '(no URL)'}")
        lines.extend(follow.link_lines)
        lines.append(f"  {follow.status}")
        absent = None if follow.page is not None else f"{follow.name} not fetched"
        for name, rule in site.fields.items():
            if rule.from_ == follow.name:
                trace = traces.get(name, [])
                lines.extend(_field_lines(name, rule, raw.get(name), trace, absent))
    try:
        record = normalise_lot(site, raw, url)
    except LotValidationError as exc:
        lines.append(f"record: INVALID: {exc}")
    else:
        parsed = record.model_dump(exclude={"raw", "url", "site", "house"})
        lines.append("record: ok")
        lines.extend(f"  {key:<18} {value!r}" for key, value in parsed.items())
    return lines


def _describe_follow_up(site: SiteDefinition, name: str, page: Page, url: str) -> list[str]:
    """One follow-up resource on its own: the fields whose rules read ``from:`` it.

    A ``{lot_id}`` in their rules is filled only when ``lot_id.url_regex`` matches the
    resource's URL (the lot page, which may hold the id, is not read here).
    """

    rules = {field: rule for field, rule in site.fields.items() if rule.from_ == name}
    lines = [f"  {_describe_page(page)}"]
    if not rules:
        return [*lines, f"  (no field rule reads from: {name})"]
    traces: Traces = {}
    # The other fields read an empty lot page; the hook is for lot pages, not resources.
    alone = site.model_copy(update={"hook": None})
    raw = extract_lot(alone, Page(""), url, traces=traces, resources={name: page})
    for field, rule in rules.items():
        lines.extend(_field_lines(field, rule, raw.get(field), traces.get(field, [])))
    return lines


def _describe_seller(site: SiteDefinition, page: Page, url: str, seller_id: str) -> list[str]:
    """A seller's profile page: each rule of the ``seller:`` section and the seller record
    (``seller_id`` names it: on a crawl it comes from the lot page)."""
    from tasks.extract import extract_fields
    from tasks.sellers import SellerValidationError, normalise_seller

    if site.seller is None:
        return ["  (the site has no seller: section)"]
    traces: Traces = {}
    raw = extract_fields(site.seller.fields, page, url, traces=traces)
    lines = [f"  {_describe_page(page)}"]
    for name, rule in site.seller.fields.items():
        lines.extend(_field_lines(name, rule, raw.get(name), traces.get(name, [])))
    try:
        record = normalise_seller(site, seller_id, url, page)
    except SellerValidationError as exc:
        lines.append(f"seller: INVALID: {exc}")
    else:
        lines.append("seller: ok")
        parsed = record.model_dump(exclude={"raw", "url", "site"})
        lines.extend(f"  {key:<18} {value!r}" for key, value in parsed.items())
    return lines


def _describe_listing(site: SiteDefinition, page: Page, url: str) -> list[str]:
    if site.listing is None:
        return ["  (the site has no listing: section)"]
    links, next_page = extract_listing(site, page, url)
    lines = [f"  {_describe_page(page)}"]
    lines.extend(_chain_lines("lot_links", site.listing.lot_links, page, links=True))
    if site.listing.next_page is not None:
        lines.extend(_chain_lines("next_page", site.listing.next_page, page, links=True))
    lines.append(f"  lot links: {len(links)}")
    lines.extend(f"    {link}" for link in links[:10])
    if len(links) > 10:
        lines.append(f"    ... and {len(links) - 10} more")
    lines.append(f"  next page: {next_page or '(none: last page)'}")
    return lines


def _describe_search(site: SiteDefinition, page: Page, url: str) -> list[str]:
    """What a search result page gives: the lots taken, and those ``exclude`` left out."""
    if site.search is None:
        return ["  (the site has no search: section)"]
    rule = site.search.results
    taken = extract_results(site, page, url)
    everything = extract_results(site, page, url, exclude=False)
    left_out = [link for link in everything if link not in taken]
    asked = site.search.query_of(site.base_url, url)
    lines = [f"  {_describe_page(page)}"]
    lines.append(
        f"  query {asked[0]!r}, page {asked[1]}" if asked else "  (not a URL of search.url)"
    )
    links = rule.lot_links is not None
    chosen = rule.lot_links if rule.lot_links is not None else rule.lot_ids
    if chosen is not None:
        lines.extend(_chain_lines("lot_links" if links else "lot_ids", chosen, page, links=links))
    if rule.exclude is not None:
        lines.extend(_chain_lines("exclude", rule.exclude, page, links=links))
    lines.append(f"  results: {len(taken)}")
    lines.extend(f"    {link}" for link in taken[:10])
    if len(taken) > 10:
        lines.append(f"    ... and {len(taken) - 10} more")
    lines.append(f"  left out by exclude: {len(left_out)}")
    lines.extend(f"    {link}" for link in left_out[:10])
    return lines


def check_site(
    file: Path,
    page: str | None = None,
    kind: str = "lot",
    *,
    resources: Mapping[str, Path] | None = None,
    url: str | None = None,
) -> str:
    """Validate ``file``; with ``page`` (a saved file or a URL), report what its rules extract.

    ``kind`` is lot, listing, search, seller (a seller's profile page) or ``follow:NAME``
    (the follow-up resource NAME alone).
    ``resources`` supplies a saved lot page's follow-ups from files, by name; ``url`` is
    where a saved page came from (for its lot id and links; default: the site's base URL).
    Everything is checked before any request; raises SiteDefinitionError for a bad file,
    CheckError for options that do not fit it, FetchError when the page cannot be fetched.
    """
    site = load_site_file(file)
    lines = [
        f"{file}: valid site definition {site.name!r} ({site.house})",
        f"  start: {site.start_url_for('YYYY-MM-DD') or '(no dated listing)'}",
        f"  currency {site.currency}, date languages {', '.join(site.date_languages)}",
        f"  {site.politeness.requests_per_second:g} requests/s to {', '.join(sorted(site.hosts))}",
    ]
    if page is None:
        if resources or url:
            raise CheckError("--resource and --url describe a page: give it with --page")
        return "\n".join(lines)
    fetch_kind = _check_kind(site, kind)
    supplied = _read_resources(site, kind, resources or {})
    if url is not None and (_is_url(page) or not _is_url(url)):
        raise CheckError(
            f"--url {url!r}: give the http(s) URL a saved --page was fetched from (a page "
            "given as a URL is read from where it is fetched)"
        )
    from tasks.politeness import PoliteFetcher

    with contextlib.ExitStack() as stack:
        fetcher = None
        if _is_url(page):
            fetcher = stack.enter_context(
                PoliteFetcher(site.user_agent, site.politeness, site.hosts)
            )
            doc, page_url, answer = _fetch(fetcher, site, page, fetch_kind)
            lines.append(f"{_kind_name(kind)} page {page}:")
            lines.append(f"  {answer}")
        else:
            doc = _read_text(site, Path(page), "page")
            page_url = url or site.base_url.rstrip("/") + "/"
            lines.append(f"{_kind_name(kind)} page {page} (as {page_url}):")
        if kind == "lot":
            hint = "" if fetcher or url else " (a saved page: give --url, where it was saved from)"
            lines.extend(_describe_lot(site, doc, page_url, fetcher, supplied, hint))
        elif kind == "search":
            lines.extend(_describe_search(site, doc, page_url))
        elif kind == "listing":
            lines.extend(_describe_listing(site, doc, page_url))
        elif kind == "seller":  # the seller id comes from a lot page, not read here
            lines.extend(_describe_seller(site, doc, page_url, "(checked alone)"))
        else:
            lines.extend(_describe_follow_up(site, fetch_kind, doc, page_url))
    return "\n".join(lines)
