"""``auction-pipeline sites check FILE [--page PAGE]``: validate a site file, try its selectors.

The tool a research software engineer uses while writing or fixing a site definition: the
file is validated as the pipeline would (errors name the field), and given a saved page or a
URL it shows, field by field, what each selector extracts and what the parser makes of it.
"""

from __future__ import annotations

from pathlib import Path

from sites.loader import SiteDefinition, load_site_file


def _page_text(site: SiteDefinition, page: str, kind: str) -> tuple[str, str]:
    """The page's HTML and its URL (for resolving links), from a file or politely fetched."""
    if page.startswith(("http://", "https://")):
        from tasks.politeness import PoliteFetcher
        from tasks.scrape import decode_html

        with PoliteFetcher(site.user_agent, site.politeness, site.hosts) as fetcher:
            fetched = fetcher.get(page, kind=kind)
        return decode_html(fetched.body, fetched.content_type), fetched.url
    path = Path(page)
    try:
        return path.read_bytes().decode("utf-8", errors="replace"), site.base_url + "/"
    except OSError as exc:
        raise FileNotFoundError(f"cannot read page {path}: {exc.strerror}") from exc


def _describe_lot(site: SiteDefinition, html: str, url: str) -> list[str]:
    from tasks.extract import extract_lot
    from tasks.normalise import LotValidationError, normalise_lot

    raw = extract_lot(site, html, url)
    lines = []
    for name, rule in site.fields.items():
        selector = rule.selector.css or rule.selector.xpath
        value = raw.get(name)
        flag = "MISSING" if value in (None, [], "") else "ok"
        lines.append(f"  {name:<13} {flag:<8} {selector}")
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


def _describe_listing(site: SiteDefinition, html: str, url: str) -> list[str]:
    from tasks.extract import extract_listing

    links, next_page = extract_listing(site, html, url)
    lines = [f"  lot links: {len(links)}"]
    lines.extend(f"    {link}" for link in links[:10])
    if len(links) > 10:
        lines.append(f"    ... and {len(links) - 10} more")
    lines.append(f"  next page: {next_page or '(none: last page)'}")
    return lines


def check_site(file: Path, page: str | None = None, kind: str = "lot") -> str:
    """Validate ``file``; with ``page``, report what the selectors extract. Raises on errors."""
    site = load_site_file(file)
    lines = [
        f"{file}: valid site definition {site.name!r} ({site.house})",
        f"  start: {site.start_url_for('YYYY-MM-DD')}",
        f"  currency {site.currency}, date languages {', '.join(site.date_languages)}",
        f"  {site.politeness.requests_per_second:g} requests/s to {', '.join(sorted(site.hosts))}",
    ]
    if page is not None:
        html, url = _page_text(site, page, kind)
        lines.append(f"{kind} page {page}:")
        describe = _describe_lot if kind == "lot" else _describe_listing
        lines.extend(describe(site, html, url))
    return "\n".join(lines)
