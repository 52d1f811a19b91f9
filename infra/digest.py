"""The daily digest: one mail a day listing the last 24 hours' deployment runs.

Failure mails say what broke; the digest says what happened, so a quiet inbox is known to
mean "all ran" rather than "the notifier is dead". Set ``$AUCTION_PIPELINE_DIGEST_AT`` to a
UTC time of day (``07:30``); the notifier (``infra/notifier.py``) then mails, once per UTC
day and after that time, each run of the preceding 24 hours: deployment, scheduled time,
state, lots collected (from the run's per-site table) and, for a run that did not complete,
its message.

Pure functions; the notifier fetches the runs and tables from the API.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from email.message import EmailMessage
from typing import Any

DIGEST_AT_ENV = "AUCTION_PIPELINE_DIGEST_AT"


def digest_at(environ: Mapping[str, str] = os.environ) -> time | None:
    """The UTC time of day the digest goes out, or None when it is not configured;
    ValueError naming the variable for anything but ``HH:MM``."""
    text = environ.get(DIGEST_AT_ENV, "").strip()
    if not text:
        return None
    try:
        hours, minutes = (int(part) for part in text.split(":"))
        return time(hours, minutes)
    except ValueError:
        raise ValueError(
            f"{DIGEST_AT_ENV}={text!r}: expected a UTC time of day HH:MM, e.g. 07:30"
        ) from None


def digest_due(now: datetime, at: time, last_sent: date | None) -> bool:
    """Whether the digest of ``now``'s UTC day is due: past ``at`` and not sent that day."""
    return now.time() >= at and last_sent != now.date()


def lots_in_table(artifact_data: Any) -> int | None:
    """Lots collected, summed over a run's per-site table artifact (its ``data`` is the
    rows as JSON); None when the table is missing or unreadable."""
    try:
        rows = json.loads(artifact_data) if isinstance(artifact_data, str) else artifact_data
        return sum(int(row["lots"]) for row in rows)
    except (TypeError, ValueError, KeyError):
        return None


@dataclass(frozen=True)
class DigestLine:
    """One run of the digest."""

    deployment: str
    scheduled: str  # ISO time, UTC
    state: str
    lots: int | None
    message: str


def compose_digest(
    day: date, lines: list[DigestLine], ui_url: str, sender: str, recipients: list[str]
) -> EmailMessage:
    """The digest mail of ``day`` (pure)."""
    failed = [line for line in lines if line.state != "COMPLETED"]
    message = EmailMessage()
    verdict = f"{len(failed)} of {len(lines)} not completed" if failed else "all completed"
    message["Subject"] = (
        f"[auction-pipeline] digest {day.isoformat()}: {len(lines)} run(s), {verdict}"
    )
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    body = [f"Deployment runs scheduled in the 24 hours before {day.isoformat()}'s digest:", ""]
    if not lines:
        body.append("  none: check that the deployments are registered and scheduled")
    for line in lines:
        lots = "?" if line.lots is None else str(line.lots)
        body.append(f"  {line.scheduled[:16].replace('T', ' ')} UTC  {line.deployment:<32} "
                    f"{line.state:<10} {lots:>6} lots")  # fmt: skip
        if line.state != "COMPLETED" and line.message:
            body.append(f"      {line.message[:300]}")
    body += ["", f"All runs in the Prefect UI: {ui_url.rstrip('/')}/runs"]
    message.set_content("\n".join(body) + "\n")
    return message
