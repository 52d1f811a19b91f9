"""Runs that never started (issue 15 part 3), as pure functions: which runs are missed, what
the mail says of the work pool and its workers, the threshold's variable, and the server
watch that mails an outage once. The mail through a real server, worker and SMTP server is
in tests/test_deployments_slurm.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infra.missed_runs import (
    MISSED_AFTER_ENV,
    ServerWatch,
    compose_missed,
    is_missed,
    missed_after,
    pool_report,
)

NOW = datetime(2026, 6, 15, 6, 45, tzinfo=UTC)


def _run(state: str, due: datetime | None) -> dict[str, object]:
    return {
        "id": "0d9c",
        "name": "quiet-otter",
        "state_type": state,
        "state": {"name": "Late" if state == "SCHEDULED" else state.title()},
        "expected_start_time": due.isoformat() if due else None,
    }


def test_only_runs_still_scheduled_past_the_delay_are_missed() -> None:
    half_hour = timedelta(minutes=30)
    assert is_missed(_run("SCHEDULED", NOW - timedelta(minutes=31)), NOW, half_hour)
    assert not is_missed(_run("SCHEDULED", NOW - timedelta(minutes=29)), NOW, half_hour)
    assert not is_missed(_run("SCHEDULED", NOW + timedelta(hours=1)), NOW, half_hour)
    assert not is_missed(_run("SCHEDULED", None), NOW, half_hour)
    for started in ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"):
        assert not is_missed(_run(started, NOW - timedelta(hours=3)), NOW, half_hour)


def test_the_mail_names_the_deployment_the_time_and_the_pool_and_workers() -> None:
    pool = {"name": "auction-pipeline", "type": "process", "status": "NOT_READY"}
    workers = [
        {"name": "ProcessWorker-1", "status": "OFFLINE",
         "last_heartbeat_time": (NOW - timedelta(hours=2)).isoformat()},
    ]  # fmt: skip
    lines = pool_report(pool, workers, NOW)
    assert lines[0] == "work pool auction-pipeline (process): NOT_READY"
    assert lines[1] == "  worker ProcessWorker-1: OFFLINE, last seen 2 h ago"
    assert "no worker is online: restart the worker" in lines[2]
    message = compose_missed(
        _run("SCHEDULED", datetime(2026, 6, 15, 5, 0, tzinfo=UTC)),
        "daily-pipeline/prod", lines, NOW, "http://ui:4200", "p@x.org", ["c@x.org"],
    )  # fmt: skip
    assert message["Subject"] == (
        "[auction-pipeline] daily-pipeline/prod: run due 2026-06-15 05:00 UTC has not started"
    )
    body = message.get_content()
    assert "scheduled for 2026-06-15 05:00 UTC and has not started 105 min later" in body
    assert "(state: Late)" in body and lines[1] in body
    assert "http://ui:4200/runs/flow-run/0d9c" in body


def test_a_paused_pool_a_pool_never_polled_and_a_missing_pool_are_said_with_the_fix() -> None:
    paused = pool_report({"name": "p", "type": "process", "status": "PAUSED", "is_paused": True},
                         [], NOW)  # fmt: skip
    assert "PAUSED: resume it in the UI or with `prefect work-pool resume p`" in paused[0]
    assert "no worker has ever polled it" in paused[1]
    assert "auction-pipeline deploy" in pool_report(None, [], NOW)[0]
    online = [{"name": "w", "status": "ONLINE", "last_heartbeat_time": NOW.isoformat()}]
    assert pool_report({"name": "p", "type": "process", "status": "READY"}, online, NOW) == [
        "work pool p (process): READY",
        "  worker w: ONLINE, last seen 0 s ago",
    ]


def test_the_delay_comes_from_its_variable_and_bad_values_are_named() -> None:
    assert missed_after({}) == timedelta(minutes=30)
    assert missed_after({MISSED_AFTER_ENV: "0.5"}) == timedelta(seconds=30)
    for bad in ("-1", "later", "nan", "1e9"):
        with pytest.raises(ValueError, match=MISSED_AFTER_ENV):
            missed_after({MISSED_AFTER_ENV: bad})


def test_an_outage_is_mailed_once_after_the_delay_and_again_only_after_recovery() -> None:
    watch = ServerWatch(timedelta(minutes=30))
    assert not watch.failed(NOW)
    assert not watch.failed(NOW + timedelta(minutes=29))
    assert watch.failed(NOW + timedelta(minutes=31))  # mail now
    assert not watch.failed(NOW + timedelta(hours=5))  # once per outage
    assert watch.down_since == NOW
    watch.answered()
    assert not watch.failed(NOW + timedelta(hours=6))
    assert watch.failed(NOW + timedelta(hours=6, minutes=31))
