"""``auction-pipeline sites check FILE [--page PAGE]``: validate a site file, try its selectors.

The tool a research software engineer uses while writing or fixing a site definition: the
file is validated as the pipeline would (errors name the field), and given a saved page or a
URL it shows, field by field, what each step of its selector chain produced (the matched text,
the regex group, the parsed document, the JSON value) and what the parser makes of it.
"""

from __future__ import annotations

import json
from pathlib import Path

from sites.loader import SiteDefinition, load_site_file
from tasks.chains import Page


def _page_text(site: SiteDefinition, page: str, kind: str) -> tuple[Page, str]:
    """The page (HTML or JSON) and its URL (for resolving links), from a file or fetched.

    A saved file is JSON when its name ends in ``.json``, HTML otherwise; a fetched page is
    what its Content-Type says, among the types the site accepts for ``kind``.
    """
    if page.startswith(("http://", "https://")):
        from tasks.crawl import decode_html
        from tasks.politeness import PoliteFetcher

        with PoliteFetcher(site.user_agent, site.politeness, site.hosts) as fetcher:
            fetched = fetcher.get(page, kind=kind, expect=site.accepts(kind))
        text = decode_html(fetched.body, fetched.content_type)
        return Page.from_text(text, fetched.content_type), fetched.url
    path = Path(page)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as exc:
        raise FileNotFoundError(f"cannot read page {path}: {exc.strerror}") from exc
    content_type = "application/json" if path.suffix.lower() == ".json" else "text/html"
    return Page.from_text(text, content_type), site.base_url + "/"


def _shown(values: list[object], width: int = 100) -> str:
    """A step's outputs in one line: how many, and the first ones as compact JSON, cut."""
    text = json.dumps(values, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"({len(values)}) {text if len(text) <= width else text[: width - 1] + '…'}"


def _describe_lot(site: SiteDefinition, page: Page, url: str) -> list[str]:
    from tasks.extract import Traces, extract_lot
    from tasks.normalise import LotValidationError, normalise_lot

    traces: Traces = {}
    raw = extract_lot(site, page, url, traces=traces)
    lines = ["  (a JSON document)" if page.kind == "json" else "  (an HTML page)"]
    for name, rule in site.fields.items():
        value = raw.get(name)
        flag = "MISSING" if value in (None, [], "") else "ok"
        lines.append(f"  {name:<13} {flag:<8} {rule.selector.describe()}")
        # Each step's outputs, so a researcher sees where a chain stops finding anything.
        lines.extend(
            f"  {'':<13}   {step.step:<6} {_shown(step.values)}" for step in traces.get(name, [])
        )
        lines.append(f"  {'':<13} -> {value!r}")
    try:
        record = normalise_lot(site, raw, url)
    except LotValidationError as exc:
        lines.append(f"record: INVALID: {exc}")
    else:
        parsed = record.model_dump(exclude={"raw", "url", "site", "house"})
        lines.append("record: ok")
        lines.extend(f"  {key:<18} {value!r}" for key, value in parsed.items())
    return lines


def _describe_listing(site: SiteDefinition, html: Page, url: str) -> list[str]:
    from tasks.extract import extract_listing

    links, next_page = extract_listing(site, html, url)
    lines = [f"  lot links: {len(links)}"]
    lines.extend(f"    {link}" for link in links[:10])
    if len(links) > 10:
        lines.append(f"    ... and {len(links) - 10} more")
    lines.append(f"  next page: {next_page or '(none: last page)'}")
    return lines


def _describe_search(site: SiteDefinition, page: Page, url: str) -> list[str]:
    """What a search result page gives: the lots taken, and those ``exclude`` left out."""
    from tasks.extract import extract_results

    if site.search is None:
        return ["  (the site has no search: section)"]
    taken = extract_results(site, page, url)
    everything = extract_results(site, page, url, exclude=False)
    left_out = [link for link in everything if link not in taken]
    asked = site.search.query_of(site.base_url, url)
    lines = [f"  query {asked[0]!r}, page {asked[1]}" if asked else "  (not a URL of search.url)"]
    lines.append(f"  results: {len(taken)}")
    lines.extend(f"    {link}" for link in taken[:10])
    if len(taken) > 10:
        lines.append(f"    ... and {len(taken) - 10} more")
    lines.append(f"  left out by exclude: {len(left_out)}")
    lines.extend(f"    {link}" for link in left_out[:10])
    return lines


def check_site(file: Path, page: str | None = None, kind: str = "lot") -> str:
    """Validate ``file``; with ``page``, report what the selectors extract. Raises on errors."""
    site = load_site_file(file)
    lines = [
        f"{file}: valid site definition {site.name!r} ({site.house})",
        f"  start: {site.start_url_for('YYYY-MM-DD') or '(no dated listing)'}",
        f"  currency {site.currency}, date languages {', '.join(site.date_languages)}",
        f"  {site.politeness.requests_per_second:g} requests/s to {', '.join(sorted(site.hosts))}",
    ]
    if page is not None:
        html, url = _page_text(site, page, kind)
        lines.append(f"{kind} page {page}:")
        describe = {"lot": _describe_lot, "search": _describe_search}.get(kind, _describe_listing)
        lines.extend(describe(site, html, url))
    return "\n".join(lines)
