"""Lot identity and declared content types: a platform's lot id keys its lots, so a renamed
slug or a tracking parameter is the same lot; each kind of page is accepted only as the
content types the site file declares for it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import yaml

from sites.loader import SITES_DIR, SiteDefinitionError, load_site_file, load_sites
from sites.sections import LotIdentity
from tasks.extract import extract_lot
from tasks.normalise import LotValidationError, normalise_lot
from tasks.store import load_day, table_rows

DAY, NEXT_DAY = date(2026, 3, 14), date(2026, 3, 15)
PAGE = """<html><body><h1>Mambila mask</h1><p>Lot <span class="lot-number">7</span></p>
<dl><dt>Sale date</dt><dd>14 March 2026</dd><dt>Result</dt><dd>Sold for £1,200</dd></dl>
<span id="lot-id">HF-7</span></body></html>"""


def _site_file(tmp_path: Path, **changes: object) -> Path:
    data = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    data.update(changes)
    path = tmp_path / "harrow-finch.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("lot_id", "named"),
    [
        ({"url_regex": "/lot/[0-9]+"}, "has no group"),
        ({"url_regex": "/lot/([0-9]+"}, "not a valid regular expression"),
        ({"url_regex": "/lot/(.+)", "field": "title"}, "exactly one of 'url_regex' or 'field'"),
        ({}, "exactly one of 'url_regex' or 'field'"),
        ({"field": "platform_id"}, "lot_id.field 'platform_id' names no field rule"),
    ],
)
def test_a_bad_lot_id_rule_is_refused_naming_the_file_and_the_fix(
    tmp_path: Path, lot_id: dict[str, str], named: str
) -> None:
    path = _site_file(tmp_path, lot_id=lot_id)
    with pytest.raises(SiteDefinitionError) as caught:
        load_site_file(path)
    assert str(path) in str(caught.value) and named in str(caught.value)


def test_the_platform_lot_id_keys_the_lot_whatever_its_slug_and_tracking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_SITE_URL", "http://127.0.0.1:8765")
    site = load_site_file(_site_file(tmp_path, lot_id={"url_regex": r"/item/([0-9]+)(?:_|$|\?)"}))
    urls = [
        "https://www.liveauctioneers.example/item/123456_mambila-mask",
        "https://www.liveauctioneers.example/item/123456_mambila-mask-cameroon?ref=search&pos=3",
        "https://www.liveauctioneers.example/item/123456",
    ]
    keys = {normalise_lot(site, extract_lot(site, PAGE, url), url).lot_key for url in urls}
    assert keys == {"123456"}
    # No id where the rule says: an invalid lot naming the rule, never a guessed key.
    url = "https://www.liveauctioneers.example/catalog/99_sale"
    with pytest.raises(LotValidationError) as caught:
        normalise_lot(site, extract_lot(site, PAGE, url), url)
    assert caught.value.fields == ("lot_id",)
    assert "lot_id.url_regex" in str(caught.value) and url in str(caught.value)


def test_a_lot_id_from_a_field_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_SITE_URL", "http://127.0.0.1:8765")
    data = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    fields = {**data["fields"], "platform_id": {"selector": {"css": "#lot-id::text"}}}
    site = load_site_file(_site_file(tmp_path, fields=fields, lot_id={"field": "platform_id"}))
    record = normalise_lot(
        site, extract_lot(site, PAGE, "https://h.example/a/b"), "https://h.example/a/b"
    )
    assert record.lot_key == "HF-7"


def test_a_renamed_slug_on_a_later_day_is_the_same_lot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_SITE_URL", "http://127.0.0.1:8765")
    site = load_site_file(_site_file(tmp_path, lot_id={"url_regex": r"/item/([0-9]+)"}))
    url = "sqlite:///" + str(tmp_path / "db.sqlite")
    for day, link in ((DAY, "/item/55_mask"), (NEXT_DAY, "/item/55_mambila-mask-renamed")):
        page_url = f"https://la.example{link}"
        record = normalise_lot(site, extract_lot(site, PAGE, page_url), page_url)
        processed = tmp_path / f"{day}.jsonl"
        processed.write_text(record.model_dump_json() + "\n")
        load_day(day, [site], [str(processed)], url)
    (lot,) = table_rows(url, "lots")
    assert lot["lot_key"] == "55" and lot["first_seen"] == DAY and lot["last_seen"] == NEXT_DAY
    assert lot["url"].endswith("/item/55_mambila-mask-renamed")  # the latest URL
    assert len(table_rows(url, "observations")) == 2


def test_content_types_are_declared_per_kind_and_checked(tmp_path: Path) -> None:
    (harrow,) = load_sites(["harrow-finch"])
    assert harrow.accepts("lot") == ("text/html",) and harrow.accepts("image") == ("image/",)
    path = _site_file(tmp_path, content_types={"search": ["application/json"]})
    site = load_site_file(path)
    assert site.accepts("search") == ("application/json",)
    assert site.accepts("lot") == ("text/html",)  # undeclared kinds keep the default
    bad = _site_file(tmp_path, content_types={"search": ["json"]})
    with pytest.raises(SiteDefinitionError, match=r"content_types.search: 'json' is not a media"):
        load_site_file(bad)


def test_lot_identity_reads_only_a_plausible_id() -> None:
    rule = LotIdentity(url_regex=r"/l/([^/?]+)")
    assert rule.read("https://c.example/l/777-mask?x=1", {}) == "777-mask"
    with pytest.raises(ValueError, match="expected a URL matching"):
        rule.read("https://c.example/l/" + "9" * 300, {})
