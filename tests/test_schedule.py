"""Which day a scheduled run collects (issue 15 part 1), as pure functions: the scheduled
moment's date in its schedule's time zone, across midnight in Europe/London in summer and
winter; the schedule found from Prefect's idempotency key; the lateness threshold and its
variable. The run against a real deployment is in tests/test_deployments_slurm.py."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from uuid import uuid4

import pytest

from flows.schedule import (
    LATE_AFTER_ENV,
    Scheduled,
    late_after,
    lateness_text,
    schedule_id_of,
    schedule_timezone,
)

UTC = dt.UTC


@pytest.mark.parametrize(
    ("moment", "zone", "day"),
    [
        # 23:30 UTC in British summer time is 00:30 the next day in London.
        (dt.datetime(2026, 6, 14, 23, 30, tzinfo=UTC), "Europe/London", dt.date(2026, 6, 15)),
        # In winter London is UTC: the same 23:30 is still the 14th.
        (dt.datetime(2026, 1, 14, 23, 30, tzinfo=UTC), "Europe/London", dt.date(2026, 1, 14)),
        # The night the clocks go forward (29 March 2026, 01:00 UTC).
        (dt.datetime(2026, 3, 28, 23, 59, tzinfo=UTC), "Europe/London", dt.date(2026, 3, 28)),
        (dt.datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "Europe/London", dt.date(2026, 3, 30)),
        # A host in New York runs a London schedule: the host's zone plays no part.
        (
            dt.datetime(2026, 6, 15, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
            "Europe/London",
            dt.date(2026, 6, 15),
        ),
        (dt.datetime(2026, 6, 14, 23, 30, tzinfo=UTC), "UTC", dt.date(2026, 6, 14)),
    ],
)
def test_the_day_is_the_scheduled_moments_date_in_the_schedules_zone(
    moment: dt.datetime, zone: str, day: dt.date
) -> None:
    assert Scheduled(moment, zone).day == day


def test_the_scheduled_time_is_shown_as_the_schedule_says_it() -> None:
    scheduled = Scheduled(dt.datetime(2026, 6, 14, 23, 30, tzinfo=UTC), "Europe/London")
    assert scheduled.local() == "2026-06-15 00:30 Europe/London"


def test_a_run_is_late_only_past_the_threshold() -> None:
    scheduled = Scheduled(dt.datetime(2026, 6, 15, 5, 0, tzinfo=UTC), "Europe/London")
    hour = dt.timedelta(hours=1)
    assert scheduled.late_by(scheduled.at + dt.timedelta(minutes=59), hour) is None
    assert scheduled.late_by(scheduled.at + hour, hour) is None
    late = scheduled.late_by(scheduled.at + dt.timedelta(hours=2, minutes=5), hour)
    assert late == dt.timedelta(hours=2, minutes=5)
    assert lateness_text(late) == "2 h 05 min"
    assert lateness_text(dt.timedelta(minutes=7, seconds=30)) == "7 min"


def test_the_schedule_that_made_a_run_is_read_from_its_idempotency_key() -> None:
    deployment, schedule = uuid4(), uuid4()
    key = f"scheduled {deployment} {schedule} 2026-06-14 23:30:00+00:00"
    assert schedule_id_of(key) == schedule
    for other in (None, "", "manual run", f"scheduled {deployment}", "scheduled a b c"):
        assert schedule_id_of(other) is None


def _schedule(zone: str | None) -> SimpleNamespace:
    return SimpleNamespace(id=uuid4(), schedule=SimpleNamespace(timezone=zone))


def test_the_zone_is_the_creating_schedules_else_the_first_else_utc() -> None:
    london, tokyo = _schedule("Europe/London"), _schedule("Asia/Tokyo")
    assert schedule_timezone([london, tokyo], tokyo.id) == "Asia/Tokyo"
    assert schedule_timezone([london, tokyo], None) == "Europe/London"
    assert schedule_timezone([london, tokyo], uuid4()) == "Europe/London"
    assert schedule_timezone([], None) == "UTC"
    assert schedule_timezone([_schedule(None)], None) == "UTC"


def test_the_threshold_comes_from_its_variable_and_bad_values_are_named() -> None:
    assert late_after({}) == dt.timedelta(minutes=60)
    assert late_after({LATE_AFTER_ENV: " 15 "}) == dt.timedelta(minutes=15)
    assert late_after({LATE_AFTER_ENV: "0"}) == dt.timedelta(0)
    for bad in ("-5", "soon", "nan", "inf", "99999"):
        with pytest.raises(ValueError, match=LATE_AFTER_ENV) as caught:
            late_after({LATE_AFTER_ENV: bad})
        assert repr(bad) in str(caught.value)


def test_a_runs_crawl_follows_its_schedule_unless_a_date_is_given() -> None:
    from flows.stages import crawl_for
    from tasks.crawlid import CrawlId

    summer_night = Scheduled(dt.datetime(2026, 6, 14, 23, 30, tzinfo=UTC), "Europe/London")
    assert crawl_for(None, None, summer_night) == CrawlId(dt.date(2026, 6, 15))
    # An explicit date wins over the schedule.
    assert crawl_for(dt.date(2026, 3, 14), None, summer_night) == CrawlId(dt.date(2026, 3, 14))
    # A timed crawl of the scheduled day: the day in the schedule's zone, the time in UTC.
    assert crawl_for(None, "06:00", summer_night) == CrawlId.parse("2026-06-15T0600Z")
    # crawl_at: scheduled names the crawl by its scheduled UTC moment (crawl ids are UTC).
    assert crawl_for(None, "scheduled", summer_night) == CrawlId.parse("2026-06-14T2330Z")
    # An ad hoc run (no schedule): today.
    assert crawl_for(None, None, None) == CrawlId(dt.date.today())
