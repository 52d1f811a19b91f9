"""Process one site's stored pages for one day into clean, validated lots.

Reads the pages the scrape kept (never the live site), extracts each field with the site's
selectors, parses prices, estimates and dates, and writes the clean lots to one JSON-lines
file per site and day. A layout change shows up as required fields that stop filling: then
the site fails with the fields, their fill rates and a sample URL, and nothing is written
for it, so the database keeps only data that passed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from infra.atomic import write_atomic
from sites.loader import SiteDefinition
from tasks.extract import extract_lot
from tasks.normalise import LotRecord, LotValidationError, normalise_lot
from tasks.runinfo import RunPlace, where_am_i
from tasks.scrape import INDEX_NAME, decode_html
from tasks.storage import DataRoot

MIN_FILL_RATE = 0.9
MAX_INVALID_SHARE = 0.1


class LayoutChangeError(RuntimeError):
    """Required fields stopped filling: the site's layout probably changed."""


class TooManyInvalidLots(RuntimeError):
    """More lots failed validation than the site's fill-rate threshold allows."""


@dataclass(frozen=True)
class ProcessReport:
    """What processing one site's pages produced."""

    site: str
    day: str
    lots: int
    invalid: int
    fill_rates: dict[str, float]
    processed_file: str
    place: RunPlace = field(default_factory=where_am_i)


def fill_rates(site: SiteDefinition, raws: list[dict[str, object]]) -> dict[str, float]:
    """Fraction of lot pages on which each required field's selector found something."""
    required = [name for name, rule in site.fields.items() if rule.required]
    if not raws:
        return {}  # no sale that day: nothing to judge the layout by
    return {name: sum(1 for raw in raws if raw.get(name)) / len(raws) for name in required}


def process_site(site: SiteDefinition, day: date, data_root: str) -> ProcessReport:
    """Extract and validate the lots of ``site`` for ``day`` from its stored pages."""
    root = DataRoot(Path(data_root))
    raw_dir = root.raw_dir(day, site.name)
    index_file = raw_dir / INDEX_NAME
    try:
        entries = [json.loads(line) for line in index_file.read_text().splitlines() if line]
    except OSError as exc:
        raise FileNotFoundError(
            f"{site.name}: no stored pages for {day} ({index_file}: {exc.strerror}); "
            "run the scrape for that day first"
        ) from exc
    raws: list[dict[str, object]] = []
    records: list[LotRecord] = []
    errors: list[str] = []
    for entry in entries:
        if entry["kind"] != "lot":
            continue
        html = decode_html((raw_dir / entry["path"]).read_bytes(), entry["content_type"])
        raw = extract_lot(site, html, entry["url"])
        raws.append(dict(raw))
        try:
            records.append(normalise_lot(site, raw, entry["url"]))
        except LotValidationError as exc:
            errors.append(str(exc))

    rates = fill_rates(site, raws)
    low = {name: rate for name, rate in rates.items() if rate < MIN_FILL_RATE}
    if low:
        sample = next(e["url"] for e in entries if e["kind"] == "lot")
        shown = ", ".join(f"{name} {rate:.0%}" for name, rate in sorted(low.items()))
        raise LayoutChangeError(
            f"{site.name}: required fields below {MIN_FILL_RATE:.0%} fill rate on {day}: "
            f"{shown} (sample page: {sample}); the site's layout may have changed: fix the "
            f"selectors in sites/{site.name}.yaml. Pages are kept in {raw_dir}."
        )
    if len(errors) > MAX_INVALID_SHARE * len(raws):
        raise TooManyInvalidLots(
            f"{site.name}: {len(errors)} of {len(raws)} lots failed validation; first: {errors[0]}"
        )
    out = root.processed_file(day, site.name)
    lines = "".join(record.model_dump_json() + "\n" for record in records)
    write_atomic(out, lines.encode())
    return ProcessReport(
        site=site.name,
        day=day.isoformat(),
        lots=len(records),
        invalid=len(errors),
        fill_rates=rates,
        processed_file=str(out),
    )
