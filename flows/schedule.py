"""Which day a scheduled run collects, and whether it started late.

A deployment's run is scheduled for a moment in its schedule's time zone ("06:00
Europe/London"). The day it collects is that moment's date *in that zone*, not the date of
whatever host happens to run the flow when it finally starts: a run scheduled for 00:30
London time in summer is 23:30 UTC the evening before, and a run that waited two hours for a
free node still collects the day it was scheduled for. An explicit ``date`` parameter wins.

The time zone is that of the schedule that created the run (Prefect records it in the run's
idempotency key), else the deployment's first schedule's, else UTC (a deployment without
schedules). A run that starts more than ``$AUCTION_PIPELINE_LATE_AFTER_MINUTES`` (default 60)
after its scheduled time says so in its log and summary: the worker was down, the pool paused
or the queue full, and the researchers should know the crawl is not the one they expect.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from infra.envminutes import minutes_setting

LATE_AFTER_ENV = "AUCTION_PIPELINE_LATE_AFTER_MINUTES"
DEFAULT_LATE_AFTER = dt.timedelta(minutes=60)


@dataclass(frozen=True)
class Scheduled:
    """A deployment run's scheduled start, with the time zone its schedule counts days in."""

    at: dt.datetime  # aware
    timezone: str  # IANA name

    @property
    def day(self) -> dt.date:
        """The date the run was scheduled for, in the schedule's time zone."""
        return self.at.astimezone(ZoneInfo(self.timezone)).date()

    def local(self) -> str:
        """``2026-06-15 00:30 Europe/London``: the scheduled time as the schedule says it."""
        return f"{self.at.astimezone(ZoneInfo(self.timezone)):%Y-%m-%d %H:%M} {self.timezone}"

    def late_by(self, now: dt.datetime, threshold: dt.timedelta) -> dt.timedelta | None:
        """How late a run started at ``now`` is, when more than ``threshold``; else None."""
        delay = now - self.at
        return delay if delay > threshold else None


def late_after(environ: Mapping[str, str] = os.environ) -> dt.timedelta:
    """The lateness threshold from ``$AUCTION_PIPELINE_LATE_AFTER_MINUTES``; ValueError
    naming the variable for anything but a non-negative number of minutes."""
    return minutes_setting(LATE_AFTER_ENV, DEFAULT_LATE_AFTER, environ)


def schedule_id_of(idempotency_key: str | None) -> UUID | None:
    """The schedule that created a run, from the key Prefect's scheduler gives it
    (``scheduled <deployment id> <schedule id> <time>``); None for a run made otherwise."""
    parts = (idempotency_key or "").split(" ")
    if len(parts) < 4 or parts[0] != "scheduled":
        return None
    try:
        return UUID(parts[2])
    except ValueError:
        return None


def schedule_timezone(schedules: Sequence[Any], schedule_id: UUID | None) -> str:
    """The time zone of the schedule ``schedule_id`` among a deployment's ``schedules``
    (Prefect ``DeploymentSchedule`` objects), else of the first one, else UTC."""
    chosen = [s for s in schedules if s.id == schedule_id] or list(schedules)
    zone = getattr(chosen[0].schedule, "timezone", None) if chosen else None
    return str(zone or "UTC")


def _checked_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"the deployment's schedule has an unknown time zone {name!r}") from None
    return name


def current_schedule() -> Scheduled | None:
    """The scheduled start of the current flow run if it is a deployment's run, read with
    its deployment's schedules from the Prefect API; None for an ad hoc run (``run``, a
    notebook), which has no schedule to follow."""
    from prefect.client.orchestration import get_client
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    run = context.flow_run if context else None
    if run is None or run.deployment_id is None or run.expected_start_time is None:
        return None
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment(run.deployment_id)
    zone = schedule_timezone(deployment.schedules or [], schedule_id_of(run.idempotency_key))
    return Scheduled(at=run.expected_start_time, timezone=_checked_zone(zone))


def lateness_text(delay: dt.timedelta) -> str:
    """``2 h 05 min``."""
    minutes = int(delay.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
