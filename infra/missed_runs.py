"""Scheduled runs that never started: which ones, and the mail that says why not.

A failed run reports itself, but a run that never starts says nothing: the worker is down,
its work pool is paused, or the host that should run it is gone. Prefect keeps such a run
Scheduled (shown "Late" in the UI) for ever. The notifier (``infra/notifier.py``) asks for
deployment runs still Scheduled some time after their scheduled start and mails each one
once, naming the deployment, the time it was due and what its work pool and workers look
like, so the reader knows which of those to restart.

Pure functions; the notifier fetches the runs, pools and workers from the API.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from infra.envminutes import minutes_setting

MISSED_AFTER_ENV = "AUCTION_PIPELINE_MISSED_AFTER_MINUTES"
DEFAULT_MISSED_AFTER = timedelta(minutes=30)
NOT_STARTED = ("SCHEDULED",)
"""State types of a run that no worker has taken yet (Prefect's "Late" is a Scheduled
state); a Pending run has been taken, and its worker reports what becomes of it."""


def missed_after(environ: Mapping[str, str] = os.environ) -> timedelta:
    """How long after its scheduled start a run that has not started is mailed, from
    ``$AUCTION_PIPELINE_MISSED_AFTER_MINUTES`` (default 30); ValueError naming the variable
    for anything but minutes from 0 to a week."""
    return minutes_setting(MISSED_AFTER_ENV, DEFAULT_MISSED_AFTER, environ)


def is_missed(run: Mapping[str, Any], now: datetime, after: timedelta) -> bool:
    """Whether ``run`` (a flow run as the API returns it) is still waiting to start more
    than ``after`` past its scheduled start."""
    if run.get("state_type") not in NOT_STARTED or not run.get("expected_start_time"):
        return False
    due = datetime.fromisoformat(run["expected_start_time"])
    return now - due > after


def _ago(moment: str | None, now: datetime) -> str:
    if not moment:
        return "never"
    seconds = int((now - datetime.fromisoformat(moment)).total_seconds())
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def pool_report(
    pool: Mapping[str, Any] | None, workers: list[Mapping[str, Any]], now: datetime
) -> list[str]:
    """What the run's work pool and its workers look like, a line each."""
    if pool is None:
        return ["work pool: not found on the server (deleted or renamed?): register it again "
                "with `auction-pipeline deploy`"]  # fmt: skip
    name, paused = pool.get("name"), ""
    if pool.get("is_paused"):
        paused = f" and PAUSED: resume it in the UI or with `prefect work-pool resume {name}`"
    status = pool.get("status") or "unknown"
    lines = [f"work pool {name} ({pool.get('type')}): {status}{paused}"]
    if not workers:
        lines.append("  no worker has ever polled it: start one (`auction-pipeline worker`)")
    for worker in workers:
        lines.append(
            f"  worker {worker.get('name')}: {worker.get('status') or 'unknown'}, last seen "
            f"{_ago(worker.get('last_heartbeat_time'), now)}"
        )
    if workers and all(w.get("status") != "ONLINE" for w in workers):
        lines.append("  no worker is online: restart the worker (`auction-pipeline worker`)")
    return lines


def compose_missed(
    run: Mapping[str, Any],
    deployment_name: str,
    pool_lines: list[str],
    now: datetime,
    ui_url: str,
    sender: str,
    recipients: list[str],
) -> EmailMessage:
    """The mail for a scheduled run that has not started (pure)."""
    due = datetime.fromisoformat(run["expected_start_time"])
    waited = int((now - due).total_seconds() // 60)
    link = f"{ui_url.rstrip('/')}/runs/flow-run/{run['id']}"
    message = EmailMessage()
    message["Subject"] = (
        f"[auction-pipeline] {deployment_name}: run due {due:%Y-%m-%d %H:%M} UTC has not started"
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    lines = [
        f"The run {run.get('name')} of deployment {deployment_name} was scheduled for "
        f"{due:%Y-%m-%d %H:%M} UTC and has not started {waited} min later "
        f"(state: {(run.get('state') or {}).get('name') or run.get('state_type')}).",
        "",
        *pool_lines,
        "",
        "Once a worker serves the pool the run starts (and collects the day it was scheduled "
        "for). This mail is sent once per run.",
        "",
        f"The run in the Prefect UI: {link}",
    ]
    message.set_content("\n".join(lines) + "\n")
    return message


class ServerWatch:
    """Whether the Prefect server has been unreachable long enough to mail, once per outage."""

    def __init__(self, after: timedelta) -> None:
        self.after = after
        self.down_since: datetime | None = None
        self.mailed = False

    def answered(self) -> None:
        """The server answered: the outage, if any, is over."""
        self.down_since, self.mailed = None, False

    def failed(self, now: datetime) -> bool:
        """The server did not answer at ``now``; True once per outage, when it has lasted
        longer than ``after`` (the caller mails then)."""
        self.down_since = self.down_since or now
        if self.mailed or now - self.down_since <= self.after:
            return False
        self.mailed = True
        return True


def compose_unreachable(
    api_url: str, since: datetime, reason: str, sender: str, recipients: list[str]
) -> EmailMessage:
    """The mail for a Prefect server that has not answered since ``since`` (pure)."""
    message = EmailMessage()
    message["Subject"] = (
        f"[auction-pipeline] the Prefect server has not answered since {since:%Y-%m-%d %H:%M} UTC"
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message.set_content(
        f"The Prefect API at {api_url} has not answered since {since:%Y-%m-%d %H:%M} UTC "
        f"({reason}).\n\nWhile it is down no scheduled run starts and no failure can be "
        "reported. Check the server (`auction-pipeline server status`, then `server up`). "
        "Runs that were due meanwhile are mailed once the server answers again.\n"
    )
    return message
