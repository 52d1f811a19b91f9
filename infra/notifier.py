"""Failure e-mails: every failed or crashed run of a deployment is mailed once, with its cause.

``auction-pipeline notifier`` runs next to the Prefect server (like the worker). It asks the
Prefect API for deployment runs that ended Failed or Crashed, and mails each one once to the
configured recipients over SMTP: the deployment, the date, the failing tasks with their
errors and the Slurm job and node each ran in, the tail of the run's log, and a link to the
run in the UI. Prefect's own automations cannot do this in the open-source server (no SMTP
block; a notification template cannot read logs), hence this small service.

Configuration comes from the environment, so no secret is in the repository::

    AUCTION_PIPELINE_SMTP_HOST, _SMTP_PORT (25), _SMTP_USER, _SMTP_PASSWORD, _SMTP_STARTTLS
    AUCTION_PIPELINE_MAIL_FROM, AUCTION_PIPELINE_MAIL_TO (comma-separated)
    AUCTION_PIPELINE_UI_URL (default: PREFECT_API_URL without /api)

It also mails, once each, a scheduled run that has not started
``$AUCTION_PIPELINE_MISSED_AFTER_MINUTES`` (default 30) after its scheduled time, with the
state of its work pool and workers (``infra/missed_runs.py``), and a Prefect server that has
not answered for as long; and, with ``$AUCTION_PIPELINE_DIGEST_AT``, a daily digest of the
day's runs (``infra/digest.py``).

Which runs were mailed is kept in a state file (written atomically), so a restart neither
forgets a failure nor mails it twice; a run whose mail the SMTP server refused is tried
again at the next poll.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from infra.atomic import write_atomic
from infra.digest import DigestLine, compose_digest, digest_at, digest_due, lots_in_table
from infra.missed_runs import (
    ServerWatch,
    compose_missed,
    compose_unreachable,
    is_missed,
    missed_after,
    pool_report,
)
from infra.prefect_api import auth_headers

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_FILE = REPO_ROOT / ".state" / "notifier.json"
PLACE_MARKER = "running in"  # the line each task logs first (flows/stages.py: located)
LOG_TAIL_LINES = 30
SETTLE_SECONDS = 10.0


class NotifierError(RuntimeError):
    """Mail could not be configured or sent; the message names the setting or the server."""


@dataclass(frozen=True)
class MailSettings:
    """Where and how failure mails are sent."""

    host: str
    port: int
    user: str | None
    password: str | None
    starttls: bool
    sender: str
    recipients: list[str]

    @classmethod
    def from_environment(cls, environ: dict[str, str] | None = None) -> MailSettings:
        """Read the settings; a missing one is named with the variable to set."""
        env = dict(os.environ) if environ is None else environ
        missing = [
            name
            for name in (
                "AUCTION_PIPELINE_SMTP_HOST",
                "AUCTION_PIPELINE_MAIL_FROM",
                "AUCTION_PIPELINE_MAIL_TO",
            )
            if not env.get(name)
        ]
        if missing:
            raise NotifierError(f"set {', '.join(missing)} to send failure e-mails")
        port = env.get("AUCTION_PIPELINE_SMTP_PORT", "25")
        if not port.isdigit():
            raise NotifierError(f"AUCTION_PIPELINE_SMTP_PORT={port!r} is not a port number")
        return cls(
            host=env["AUCTION_PIPELINE_SMTP_HOST"],
            port=int(port),
            user=env.get("AUCTION_PIPELINE_SMTP_USER") or None,
            password=env.get("AUCTION_PIPELINE_SMTP_PASSWORD") or None,
            starttls=env.get("AUCTION_PIPELINE_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            sender=env["AUCTION_PIPELINE_MAIL_FROM"],
            recipients=[r.strip() for r in env["AUCTION_PIPELINE_MAIL_TO"].split(",") if r.strip()],
        )


@dataclass(frozen=True)
class FailedTask:
    """A task of the run that did not complete: name, error, and where it ran."""

    name: str
    state: str
    error: str
    place: str


def compose(
    run: dict[str, Any],
    deployment_name: str,
    tasks: list[FailedTask],
    log_tail: list[str],
    ui_url: str,
    settings: MailSettings,
) -> EmailMessage:
    """The failure e-mail for one flow run (pure: everything comes in as arguments)."""
    state = run.get("state_type") or "FAILED"
    day = (run.get("parameters") or {}).get("date") or run.get("expected_start_time", "")[:10]
    link = f"{ui_url.rstrip('/')}/runs/flow-run/{run['id']}"
    message = EmailMessage()
    message["Subject"] = f"[auction-pipeline] {deployment_name} {day}: run {state}"
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    lines = [
        f"The run {run.get('name')} of deployment {deployment_name} for {day} ended {state}.",
        "",
        f"Reason: {(run.get('state') or {}).get('message') or '(no message)'}",
        "",
    ]
    if tasks:
        lines.append("Failing tasks:")
        for task in tasks:
            lines.append(f"  - {task.name} ({task.state}) {task.place}")
            lines.append(f"      {task.error}")
        lines.append("")
    lines += [f"The run in the Prefect UI: {link}", "", f"Last {len(log_tail)} log lines:"]
    lines += [f"  {line}" for line in log_tail]
    message.set_content("\n".join(lines) + "\n")
    return message


def send(message: EmailMessage, settings: MailSettings) -> None:
    """Deliver one message; a refusal or unreachable server becomes a NotifierError."""
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
            if settings.starttls:
                smtp.starttls()
            if settings.user:
                smtp.login(settings.user, settings.password or "")
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotifierError(
            f"SMTP server {settings.host}:{settings.port} did not take the mail "
            f"({type(exc).__name__}: {exc}); it will be retried at the next poll"
        ) from exc


def _ended(run: dict[str, Any]) -> datetime | None:
    ended = run.get("end_time") or run.get("expected_start_time")
    return datetime.fromisoformat(ended) if ended else None


def _older_than_a_day(run: dict[str, Any]) -> bool:
    ended = _ended(run)
    return ended is not None and ended < datetime.now(UTC) - timedelta(days=1)


def _settles_in(run: dict[str, Any]) -> float:
    """Seconds until a run's task runs and logs can be trusted to be on the server.

    Task-run states reach the Prefect server as events that a server service writes to the
    database shortly after, and logs are shipped in batches: a mail composed the moment a
    run fails could miss the very tasks that failed.
    """
    ended = _ended(run)
    if ended is None:
        return 0.0
    return max(0.0, SETTLE_SECONDS - (datetime.now(UTC) - ended).total_seconds())


class Notifier:
    """Finds deployment runs that ended Failed or Crashed and mails each one once."""

    def __init__(
        self,
        api_url: str,
        settings: MailSettings,
        state_file: Path = DEFAULT_STATE_FILE,
        ui_url: str | None = None,
        log: Callable[[str], None] = print,
    ):
        self.api = httpx.Client(base_url=api_url.rstrip("/"), headers=auth_headers(), timeout=30)
        self.settings = settings
        self.state_file = state_file
        self.ui_url = ui_url or api_url.rstrip("/").removesuffix("/api")
        self.log = log

    def _load_state(self) -> dict[str, Any]:
        try:
            state = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}
        return state if isinstance(state, dict) else {}

    def _state(self, key: str) -> set[str]:
        """The runs already mailed under ``key`` ("mailed": failures, "missed": late)."""
        value = self._load_state().get(key, [])
        return set(value) if isinstance(value, list) else set()

    def _mailed(self) -> set[str]:
        return self._state("mailed")

    def _save(self, key: str, value: Any) -> None:
        state = self._load_state()
        state[key] = value
        write_atomic(self.state_file, json.dumps(state, sort_keys=True).encode())

    def _remember(self, mailed: Iterable[str], key: str = "mailed") -> None:
        self._save(key, sorted(mailed))

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        response = self.api.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def failed_runs(self, limit: int = 200) -> list[dict[str, Any]]:
        """The ``limit`` most recent deployment runs in a Failed or Crashed state, oldest
        first (the newest are asked for, so old history never hides a new failure)."""
        runs: list[dict[str, Any]] = self._post(
            "/flow_runs/filter",
            {
                "flow_runs": {
                    "state": {"type": {"any_": ["FAILED", "CRASHED"]}},
                    "deployment_id": {"is_null_": False},
                },
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": limit,
            },
        )
        return list(reversed(runs))

    def _tasks(self, run_id: str) -> list[FailedTask]:
        task_runs = self._post("/task_runs/filter", {"flow_runs": {"id": {"any_": [run_id]}}})
        failed = []
        for task_run in task_runs:
            if task_run.get("state_type") not in ("FAILED", "CRASHED"):
                continue
            logs = self._post(
                "/logs/filter",
                {"logs": {"task_run_id": {"any_": [task_run["id"]]}}, "sort": "TIMESTAMP_ASC"},
            )
            place = next(
                (entry["message"] for entry in logs if entry["message"].startswith(PLACE_MARKER)),
                "(where it ran is not known)",
            )
            failed.append(
                FailedTask(
                    name=task_run["name"],
                    state=task_run["state_type"],
                    error=(task_run.get("state") or {}).get("message") or "",
                    place=place,
                )
            )
        return failed

    def _log_tail(self, run_id: str) -> list[str]:
        logs = self._post(
            "/logs/filter",
            {"logs": {"flow_run_id": {"any_": [run_id]}}, "sort": "TIMESTAMP_DESC",
             "limit": LOG_TAIL_LINES},
        )  # fmt: skip
        return [f"{e['timestamp'][11:19]} {e['message']}" for e in reversed(logs)]

    def poll_once(self, wait: bool = False) -> int:
        """Mail every failed run not mailed yet, then every run missed (not started in
        time); return how many mails were sent.

        A run that ended moments ago is left for the next poll until it has settled (see
        :func:`_settles_in`); with ``wait`` this call waits for it instead.
        Raises NotifierError if the SMTP server refuses (what was sent before is kept).
        """
        first_start = not self.state_file.exists()
        mailed = self._mailed()
        sent = 0
        for run in self.failed_runs():
            if run["id"] in mailed:
                continue
            if first_start and _older_than_a_day(run):
                mailed.add(run["id"])  # history from before the notifier existed: not news
                continue
            pending = _settles_in(run)
            if pending and not wait:
                continue
            time.sleep(pending)
            deployment = self.api.get(f"/deployments/{run['deployment_id']}").json()
            flow = self.api.get(f"/flows/{run['flow_id']}").json()
            message = compose(
                run,
                f"{flow.get('name')}/{deployment.get('name')}",
                self._tasks(run["id"]),
                self._log_tail(run["id"]),
                self.ui_url,
                self.settings,
            )
            send(message, self.settings)
            mailed.add(run["id"])
            self._remember(mailed)
            sent += 1
            self.log(f"mailed {message['Subject']} to {message['To']}")
        if first_start:
            self._remember(mailed)
        return sent + self.poll_missed(first_start) + self.poll_digest()

    def missed_runs(self, after: timedelta, limit: int = 200) -> list[dict[str, Any]]:
        """Deployment runs still Scheduled more than ``after`` past their scheduled start,
        oldest first."""
        now = datetime.now(UTC)
        runs: list[dict[str, Any]] = self._post(
            "/flow_runs/filter",
            {
                "flow_runs": {
                    "state": {"type": {"any_": ["SCHEDULED"]}},
                    "deployment_id": {"is_null_": False},
                    "expected_start_time": {"before_": (now - after).isoformat()},
                },
                "sort": "EXPECTED_START_TIME_DESC",
                "limit": limit,
            },
        )
        return [run for run in reversed(runs) if is_missed(run, now, after)]

    def _pool_lines(self, pool_name: str | None) -> list[str]:
        now = datetime.now(UTC)
        if not pool_name:
            return ["work pool: the deployment names none (register it: auction-pipeline deploy)"]
        response = self.api.get(f"/work_pools/{pool_name}")
        if response.status_code == 404:
            return pool_report(None, [], now)
        response.raise_for_status()
        workers = self._post(f"/work_pools/{pool_name}/workers/filter", {})
        return pool_report(response.json(), workers, now)

    def poll_missed(self, first_start: bool = False) -> int:
        """Mail every scheduled run that has not started in time, once; how many were sent.
        On the notifier's ``first_start``, runs missed more than a day ago are history."""
        after = missed_after()
        missed = self._state("missed")
        sent = 0
        for run in self.missed_runs(after):
            if run["id"] in missed:
                continue
            if first_start and _older_than_a_day(run):
                missed.add(run["id"])
                continue
            deployment = self.api.get(f"/deployments/{run['deployment_id']}").json()
            flow = self.api.get(f"/flows/{run['flow_id']}").json()
            message = compose_missed(
                run,
                f"{flow.get('name')}/{deployment.get('name')}",
                self._pool_lines(run.get("work_pool_name") or deployment.get("work_pool_name")),
                datetime.now(UTC),
                self.ui_url,
                self.settings.sender,
                self.settings.recipients,
            )
            send(message, self.settings)
            missed.add(run["id"])
            self._remember(missed, "missed")
            sent += 1
            self.log(f"mailed {message['Subject']} to {message['To']}")
        if first_start:
            self._remember(missed, "missed")
        return sent

    def poll_digest(self, now: datetime | None = None) -> int:
        """Mail the daily digest (``infra/digest.py``) when it is configured and due: 1 if
        sent, else 0."""
        at = digest_at()
        now = now or datetime.now(UTC)
        last = self._load_state().get("digest")
        if at is None or not digest_due(now, at, date.fromisoformat(last) if last else None):
            return 0
        window = {"after_": (now - timedelta(days=1)).isoformat(), "before_": now.isoformat()}
        runs = self._post(
            "/flow_runs/filter",
            {"flow_runs": {"deployment_id": {"is_null_": False}, "expected_start_time": window},
             "sort": "EXPECTED_START_TIME_ASC", "limit": 200},
        )  # fmt: skip
        tables = {}
        if runs:
            artifacts = self._post(
                "/artifacts/filter",
                {"artifacts": {"flow_run_id": {"any_": [r["id"] for r in runs]},
                               "type": {"any_": ["table"]}}},
            )  # fmt: skip
            tables = {
                a["flow_run_id"]: lots_in_table(a.get("data"))
                for a in artifacts
                if str(a.get("key") or "").endswith("-sites")
            }
        names: dict[str, str] = {}
        lines = []
        for run in runs:
            deployment_id = run["deployment_id"]
            if deployment_id not in names:
                deployment = self.api.get(f"/deployments/{deployment_id}").json()
                flow = self.api.get(f"/flows/{run['flow_id']}").json()
                names[deployment_id] = f"{flow.get('name')}/{deployment.get('name')}"
            lines.append(
                DigestLine(
                    deployment=names[deployment_id],
                    scheduled=run.get("expected_start_time") or "",
                    state=run.get("state_type") or "",
                    lots=tables.get(run["id"]),
                    message=(run.get("state") or {}).get("message") or "",
                )
            )
        message = compose_digest(
            now.date(), lines, self.ui_url, self.settings.sender, self.settings.recipients
        )
        send(message, self.settings)
        self._save("digest", now.date().isoformat())
        self.log(f"mailed {message['Subject']} to {message['To']}")
        return 1

    def run_forever(self, interval: float = 30.0) -> None:
        """Poll every ``interval`` seconds; an SMTP or API failure is logged and retried. A
        server that has not answered for ``$AUCTION_PIPELINE_MISSED_AFTER_MINUTES`` is
        mailed once per outage: no run can start, fail or be reported meanwhile."""
        watch = ServerWatch(missed_after())
        while True:
            try:
                self.poll_once()
                watch.answered()
            except httpx.TransportError as exc:
                self.log(f"notifier: the Prefect API does not answer: {exc}")
                if watch.failed(datetime.now(UTC)):
                    self._mail_unreachable(watch, str(exc))
            except (NotifierError, httpx.HTTPError) as exc:
                self.log(f"notifier: {exc}")
            time.sleep(interval)

    def _mail_unreachable(self, watch: ServerWatch, reason: str) -> None:
        since = watch.down_since or datetime.now(UTC)
        message = compose_unreachable(
            str(self.api.base_url), since, reason, self.settings.sender, self.settings.recipients
        )
        try:
            send(message, self.settings)
        except NotifierError as exc:
            self.log(f"notifier: {exc}")
            watch.mailed = False  # try again at the next poll
            return
        self.log(f"mailed {message['Subject']} to {message['To']}")
