"""The daily digest (issue 15 part 3), as pure functions: when it is due, the lots read from
a run's per-site table, the mail, and the setting's variable. The digest of a real run
through a real SMTP server is in tests/test_deployments_slurm.py."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time

import pytest

from infra.digest import (
    DIGEST_AT_ENV,
    DigestLine,
    compose_digest,
    digest_at,
    digest_due,
    lots_in_table,
)


def test_the_digest_is_due_once_a_day_after_its_time() -> None:
    at = time(7, 30)
    morning = datetime(2026, 6, 15, 7, 29, tzinfo=UTC)
    assert not digest_due(morning, at, None)
    assert digest_due(morning.replace(minute=30), at, None)
    assert digest_due(morning.replace(hour=23), at, date(2026, 6, 14))
    assert not digest_due(morning.replace(hour=23), at, date(2026, 6, 15))


def test_lots_are_summed_from_the_runs_table_and_a_broken_table_is_unknown() -> None:
    rows = [{"site": "a", "lots": 20}, {"site": "b", "lots": 0}, {"site": "c", "lots": "5"}]
    assert lots_in_table(json.dumps(rows)) == 25
    assert lots_in_table(rows) == 25
    for broken in (None, "", "not json", json.dumps([{"site": "a"}]), json.dumps([{"lots": "x"}])):
        assert lots_in_table(broken) is None


def test_the_mail_lists_each_run_and_the_message_of_each_that_did_not_complete() -> None:
    lines = [
        DigestLine("daily-pipeline/prod", "2026-06-15T05:00:00+00:00", "COMPLETED", 74, ""),
        DigestLine("daily-pipeline/marketplaces", "2026-06-15T09:00:00+00:00", "FAILED", None,
                   "1 site(s) failed: ebay: scrape: FetchError: 503"),
    ]  # fmt: skip
    mail = compose_digest(date(2026, 6, 15), lines, "http://ui", "p@x.org", ["c@x.org"])
    assert mail["Subject"] == "[auction-pipeline] digest 2026-06-15: 2 run(s), 1 of 2 not completed"
    body = mail.get_content()
    assert "2026-06-15 05:00 UTC  daily-pipeline/prod" in body and "    74 lots" in body
    assert "FAILED" in body and "?" in body and "ebay: scrape: FetchError: 503" in body
    empty = compose_digest(date(2026, 6, 15), [], "http://ui", "p@x.org", ["c@x.org"])
    assert "0 run(s), all completed" in empty["Subject"]
    assert "none: check that the deployments are registered" in empty.get_content()


def test_the_time_comes_from_its_variable_and_bad_values_are_named() -> None:
    assert digest_at({}) is None
    assert digest_at({DIGEST_AT_ENV: "07:30"}) == time(7, 30)
    for bad in ("7", "25:00", "07:30:00", "noon", "07:61"):
        with pytest.raises(ValueError, match=DIGEST_AT_ENV):
            digest_at({DIGEST_AT_ENV: bad})
