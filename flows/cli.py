"""The ``auction-pipeline`` command: run the pipeline, the demo, and the local Slurm cluster.

Input is checked before anything is started or written: a bad profile, site, date or
profiles file gets a one-line error naming it and exit code 2. Heavy imports (Prefect, Dask)
happen only in the commands that need them, so ``cluster status`` answers at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from deployments.config import DeploymentConfigError
from flows.run import UsageError, note, run_pipeline
from infra import localslurm
from infra.notifier import NotifierError
from infra.prefect_api import PrefectApiError, configured_api_url
from infra.profiles import ProfileError
from infra.slurm import SlurmCommandError
from sites.loader import SiteDefinitionError
from tasks.crawlid import at_time
from tasks.politeness import FetchError
from tasks.runlock import DataRootBusy, LockingUnsupported

REPO_ROOT = Path(__file__).resolve().parents[1]
EXIT_FAILED_RUN = 1
EXIT_BAD_INPUT = 2
EXIT_CANNOT_START = 3


# Sale dates outside these bounds are typos (9999-12-31, 2062 for 2026): online auction
# results start in the mid-1990s, and houses publish sales months, not years, ahead.
EARLIEST_DATE = date(1990, 1, 1)
MAX_DAYS_AHEAD = 366
_YYYY_MM_DD = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(text: str) -> date:
    """A ``--date`` argument: exactly YYYY-MM-DD (not the other ISO forms Python 3.11 reads,
    such as 20260314 or 2026-W11-6), from 1990 to a year after today."""
    latest = date.today() + timedelta(days=MAX_DAYS_AHEAD)
    expected = f"expected YYYY-MM-DD from {EARLIEST_DATE} to {latest}, e.g. 2026-03-14"
    try:
        day = date.fromisoformat(text) if _YYYY_MM_DD.fullmatch(text) else None
    except ValueError:
        day = None
    if day is None or not EARLIEST_DATE <= day <= latest:
        raise argparse.ArgumentTypeError(f"invalid date {text!r}: {expected}")
    return day


def _utc_time(text: str) -> str:
    """An ``--at`` argument: a UTC time of day, HH:MM (checked here, used by the flow)."""
    try:
        at_time(date.today(), text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _data_root(text: str) -> Path:
    """A ``--data-root`` argument: an empty one (an unset shell variable) is refused here,
    as ``Path("")`` would silently mean the current directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"an empty path ({text!r}) is no data root; give a directory, or leave the option "
            "out for the default ($AUCTION_PIPELINE_DATA_ROOT or data/)"
        )
    return Path(text)


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (with a pointer to --help) and exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``auction-pipeline: error: ...`` on one line and exit with code 2."""
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = OneLineErrorParser(
        prog="auction-pipeline",
        description="Daily auction scrape -> process -> archive on Prefect, Dask and Slurm.",
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="run the whole pipeline locally against the bundled demo auction site"
    )
    demo.add_argument("--date", type=_iso_date, default=None, help="sale date (default today)")
    demo.add_argument("--data-root", type=_data_root, default=REPO_ROOT / "data" / "demo")
    demo.add_argument("--json", action="store_true", help="print one JSON object")

    run = commands.add_parser("run", help="run the daily pipeline once")
    run.add_argument("--profile", required=True, help="cluster profile: local, dev, prod, ...")
    run.add_argument("--date", type=_iso_date, required=True, help="sale date, YYYY-MM-DD")
    run.add_argument("--site", action="append", dest="sites", help="site name (repeatable)")
    run.add_argument("--data-root", type=_data_root, default=None)
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument(
        "--rescrape", action="store_true", help="fetch sites again even if the day was scraped"
    )
    run.add_argument(
        "--backups-from",
        type=_data_root,
        default=None,
        metavar="DIR",
        help="a sandbox: first copy the day's page backups from data root DIR (read only, "
        "never written) into this run's own; sites found there are not fetched again",
    )
    run.add_argument(
        "--at",
        type=_utc_time,
        default=None,
        metavar="HH:MM",
        help="this crawl's UTC time, for sites crawled several times a day (each crawl keeps "
        "its own backups and observations); default: the day's one crawl",
    )

    again = commands.add_parser(
        "reprocess", help="re-extract a past day from its stored pages (no requests to sites)"
    )
    again.add_argument("--date", type=_iso_date, required=True, help="day to redo, YYYY-MM-DD")
    again.add_argument("--site", action="append", dest="sites", help="site name (repeatable)")
    again.add_argument("--profile", default="local", help="cluster profile (default: local)")
    again.add_argument("--data-root", type=_data_root, default=None)
    again.add_argument("--json", action="store_true", help="print one JSON object")
    again.add_argument(
        "--backups-from",
        type=_data_root,
        default=None,
        metavar="DIR",
        help="a sandbox: reprocess the day's page backups of data root DIR (read only, never "
        "written) in this run's own data root, after copying them there",
    )
    again.add_argument(
        "--drop-site",
        action="append",
        dest="drop_sites",
        metavar="SITE",
        help="rebuild the day's bag without SITE, whose page backup is gone from warc/ "
        "(the previous bag is kept under archive/.superseded/); repeatable",
    )

    lot = commands.add_parser(
        "lot",
        help="fetch given lot pages into the day's page backup and store them as a crawl does",
        description="Fetch the lot pages at URL ... politely (as the crawl fetches a lot page, "
        "follow-ups and images included) into the day's WARC, then process, load and (if the "
        "day has a bag) archive the site's day. Exit 0 when every URL was stored, 1 when any "
        "failed (the others are stored), 2 for bad input (nothing fetched), 3 when the day is "
        "busy or its page backup or database is damaged.",
    )
    lot.add_argument("urls", nargs="+", metavar="URL", help="a lot page on the site's hosts")
    lot.add_argument(
        "--site", required=True, help="site name (sites directory) or path of a site YAML file"
    )
    lot.add_argument("--date", type=_iso_date, default=None, help="the day (default today)")
    lot.add_argument("--data-root", type=_data_root, default=None)
    lot.add_argument("--json", action="store_true", help="print one JSON object")

    history = commands.add_parser(
        "lot-history",
        help="print a lot's observations, one per crawl, as a table",
        description="Print every stored observation of one lot, oldest crawl first: status, "
        "bids, current bid, sold price, end time, seller. Reads the database of the data root "
        "(or $AUCTION_PIPELINE_DATABASE_URL) and never writes to it. Exit 0 when the lot was "
        "found, 2 when the site or lot is not in the database (the message shows what is), "
        "3 when the database cannot be read.",
    )
    history.add_argument("site", metavar="SITE", help="site name, as in the lots table")
    history.add_argument(
        "lot",
        metavar="LOT_ID",
        nargs="?",
        help="the lot's key (lot_key in lots.csv) or its page URL; without it, the lots "
        "seen by the most crawls are listed",
    )
    history.add_argument("--data-root", type=_data_root, default=None)
    shape = history.add_mutually_exclusive_group()
    shape.add_argument(
        "--csv", action="store_true", help="write the bag's lot_history columns as CSV"
    )
    shape.add_argument("--json", action="store_true", help="print one JSON object")

    archive = commands.add_parser("archive", help="check the daily archive bags")
    archive.add_argument("action", choices=["verify"])
    archive.add_argument("date", nargs="?", type=_iso_date, help="one day (default: all)")
    archive.add_argument("--data-root", type=_data_root, default=None)

    sites = commands.add_parser("sites", help="check a site definition file")
    sites.add_argument("action", choices=["check"])
    sites.add_argument("file", type=Path, help="a site YAML file")
    sites.add_argument(
        "--page", help="a saved page (.json: a JSON document) or a URL to try the rules on"
    )
    sites.add_argument(
        "--kind",
        default="lot",
        metavar="lot|listing|search|seller|follow:NAME",
        help="what kind of page --page is; follow:NAME is the site's follow-up NAME alone "
        "(default: lot)",
    )
    sites.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="NAME=FILE",
        help="a saved copy of the lot's follow-up NAME, for a saved lot page (repeatable)",
    )
    sites.add_argument(
        "--url", help="the URL a saved --page was fetched from (for its lot id and links)"
    )

    cluster = commands.add_parser("cluster", help="a local multi-node Slurm cluster for trials")
    cluster.add_argument("action", choices=["up", "down", "status"])
    cluster.add_argument("--state-dir", type=Path, default=localslurm.DEFAULT_STATE_DIR)
    cluster.add_argument("--nodes", type=int, default=3)
    cluster.add_argument(
        "--accounting", action="store_true", help="also run slurmdbd (on a private MariaDB): sacct"
    )

    server = commands.add_parser("server", help="the long-lived Prefect server (UI, schedules)")
    server.add_argument("action", choices=["up", "down", "status"])
    server.add_argument(
        "--state-dir", type=Path, default=None, help="default .state/prefect-server"
    )
    server.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    server.add_argument(
        "--no-auth", action="store_true", help="allow a non-loopback --host without an auth string"
    )
    server.add_argument("--port", type=int, default=4200)
    server.add_argument(
        "--database-url", default=None, help="PostgreSQL URL (postgresql+asyncpg://...)"
    )

    deploy = commands.add_parser(
        "deploy", help="check prefect.yaml and register its deployments and automations"
    )
    deploy.add_argument("--file", type=Path, default=None, help="default: prefect.yaml")
    deploy.add_argument(
        "--automations", type=Path, default=None, help="default: deployments/automations.yaml"
    )
    deploy.add_argument(
        "--name",
        action="append",
        default=None,
        help="register only this deployment (repeatable; default: all)",
    )

    worker = commands.add_parser("worker", help="run the worker that executes scheduled runs")
    worker.add_argument(
        "--pool", default=None, help="work pool (default: auction-pipeline[-slurm] by type)"
    )
    worker.add_argument(
        "--type",
        choices=["process", "slurm"],
        default="process",
        help="process: flow runs as processes here; slurm: each flow run as its own Slurm job",
    )

    notifier = commands.add_parser(
        "notifier", help="mail every failed or crashed deployment run (runs until stopped)"
    )
    notifier.add_argument(
        "--once", action="store_true", help="check once (waiting for runs that just ended) and exit"
    )
    notifier.add_argument("--interval", type=float, default=30.0, help="seconds between checks")
    notifier.add_argument("--state-file", type=Path, default=None)

    commands.add_parser(
        "bench",
        help="run the benchmarks, write benchmarks/RESULTS.md (options: bench --help)",
        add_help=False,
    )
    commands.add_parser(
        "demo-site",
        help="serve the demo auction site in the foreground (options: demo-site --help)",
        add_help=False,
    )
    return parser


def _version() -> str:
    try:
        return f"auction-pipeline {metadata.version('auction-pipeline')}"
    except metadata.PackageNotFoundError:
        return "auction-pipeline (not installed)"


def format_summary(summary: dict[str, Any]) -> str:
    """A readable end-of-run report."""
    lines = [
        f"{summary.get('flow', 'daily-pipeline')} {summary.get('date', '')}: {summary['state']} "
        f"(flow run {summary.get('flow_run_id')})"
    ]
    sites = summary.get("sites") or {}
    if sites:
        lines.append(f"  {'site':<20}{'pages':>7}{'lots':>7}{'images':>8}  status")
        for name, row in sites.items():
            status = row["error"] or ", ".join(
                ["ok"]
                + ([f"{row['failed_urls']} URL(s) failed"] if row["failed_urls"] else [])
                + [f"warning: {warning}" for warning in row.get("warnings") or []]
            )
            lines.append(
                f"  {name:<20}{row['pages']:>7}{row['lots']:>7}{row['images']:>8}  {status}"
            )
    scheduled = summary.get("scheduled")
    if scheduled and scheduled.get("late_minutes"):
        lines.append(
            f"  started late: scheduled for {scheduled['local']}, "
            f"{scheduled['late_minutes']} min before it started"
        )
    if summary.get("database"):
        lines.append(f"  database: {summary['database']} ({summary['new_lots']} new lots)")
    if summary.get("archive"):
        lines.append(f"  archive:  {summary['archive']}")
    jobs = summary.get("slurm_jobs") or []
    if jobs:
        shown = ", ".join(f"{j['job_id']}@{j['node']}" for j in jobs)
        lines.append(f"  Slurm jobs ({jobs[0]['partition']}): {shown}")
    if summary["state"] != "COMPLETED" and summary.get("message"):
        lines.append(f"  error: {summary['message']}")
    return "\n".join(lines)


def _emit(summary: dict[str, Any], as_json: bool) -> int:
    print(json.dumps(summary, default=str) if as_json else format_summary(summary))
    return 0 if summary["state"] == "COMPLETED" else EXIT_FAILED_RUN


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the demo site on loopback and run the pipeline on the local profile against it."""
    from sites.demo.server import DemoSite

    with DemoSite() as site:
        os.environ["DEMO_SITE_URL"] = site.url
        note(f"demo auction site serving at {site.url}; data root {args.data_root}")
        summary = run_pipeline("local", args.date, None, args.data_root)
    return _emit(summary, args.json)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the pipeline once on the given profile."""
    summary = run_pipeline(
        args.profile, args.date, args.sites, args.data_root, rescrape=args.rescrape,
        crawl_at=args.at, backups_from=args.backups_from,
    )  # fmt: skip
    return _emit(summary, args.json)


def cmd_reprocess(args: argparse.Namespace) -> int:
    """Re-extract, load and archive a past day from its WARC files."""
    summary = run_pipeline(
        args.profile,
        args.date,
        args.sites,
        args.data_root,
        reprocess=True,
        drop_sites=args.drop_sites,
        backups_from=args.backups_from,
    )
    return _emit(summary, args.json)


def cmd_lot(args: argparse.Namespace) -> int:
    """Fetch the given lot pages into the day's WARC and store them (``flows/ondemand.py``)."""
    from flows.ondemand import fetch_lots_on_demand, resolve_site
    from flows.run import checked_data_root
    from tasks.checksums import BackupDamaged
    from tasks.store import DatabaseConnectionError

    site = resolve_site(args.site)
    root = checked_data_root(args.data_root)
    try:
        report = fetch_lots_on_demand(site, args.urls, args.date or date.today(), root, note)
    except (BackupDamaged, DatabaseConnectionError) as exc:
        print(f"auction-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    print(json.dumps(report.as_dict(), default=str) if args.json else report.text())
    return 0 if report.ok else EXIT_FAILED_RUN


def cmd_lot_history(args: argparse.Namespace) -> int:
    """Print one lot's observations (``tasks/history.py``); read-only."""
    from tasks.history import (
        LotNotFound,
        lot_history,
        most_observed,
        render_history,
        render_most_observed,
    )
    from tasks.storage import default_data_root
    from tasks.store import DatabaseConnectionError, database_url_for

    root = Path(args.data_root or default_data_root()).resolve()
    try:
        if args.lot is None:
            found = most_observed(database_url_for(root), args.site)
            print(json.dumps(found) if args.json else render_most_observed(args.site, found))
            return 0
        history = lot_history(database_url_for(root), args.site, args.lot)
    except LotNotFound as exc:
        print(f"auction-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DatabaseConnectionError as exc:
        print(f"auction-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    if args.csv:
        sys.stdout.buffer.write(history.csv())
    elif args.json:
        print(json.dumps(dataclasses.asdict(history), default=str))
    else:
        print(render_history(history))
    return 0


def cmd_archive(args: argparse.Namespace) -> int:
    """Validate archive bags; print each day's verdict and what is wrong."""
    from tasks.archive import verify_archives
    from tasks.storage import default_data_root

    checks = verify_archives(args.data_root or default_data_root(), args.date)
    if not checks:
        print("no archive bags found")
        return EXIT_FAILED_RUN
    for check in checks:
        print(f"{check.day}: {'ok' if check.ok else 'INVALID'} ({check.path})")
        for problem in check.problems:
            print(f"  {problem}")
    return 0 if all(check.ok for check in checks) else EXIT_FAILED_RUN


def cmd_sites(args: argparse.Namespace) -> int:
    """Validate a site file; with --page, show what each rule and step extracts from it."""
    from sites.check import CheckError, check_site, parse_resources

    try:
        resources = parse_resources(args.resource)
        report = check_site(args.file, args.page, args.kind, resources=resources, url=args.url)
    except CheckError as exc:
        print(f"auction-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(report)
    return 0


def _server_up(args: argparse.Namespace, state_dir: Path) -> None:
    """``server up``: start (or confirm) the server; warn loudly about an open API."""
    from infra import prefect_server
    from infra.prefect_api import auth_string

    open_bind = prefect_server.is_open_bind(args.host)
    if open_bind and not auth_string() and args.no_auth:
        note(
            f"WARNING: --no-auth: the Prefect API on {args.host} port {args.port} asks no "
            "password; anyone who can reach this host can read every run and its logs and "
            "start or cancel flows. Set PREFECT_API_AUTH_STRING and restart the server to "
            "close it."
        )
    info = prefect_server.up(
        state_dir, args.host, args.port, args.database_url, allow_open=args.no_auth
    )
    note(f"Prefect server up (pid {info.pid}); UI at {info.url.removesuffix('/api')}")
    if auth_string():
        note(
            "its API requires the auth string in PREFECT_API_AUTH_STRING; set the same "
            "variable (or `prefect config set PREFECT_API_AUTH_STRING=...`) wherever "
            "workers, notifier and flows run"
        )
    print(f"export PREFECT_API_URL={info.url}")


def _server_down(state_dir: Path) -> None:
    """``server down``: stop the verified server, or remove a stale pid file."""
    from infra import prefect_server

    found = prefect_server.down(state_dir)
    if isinstance(found, prefect_server.ServerInfo):
        note(f"stopped the Prefect server (pid {found.pid})")
    elif found is not None:
        note(f"removed the stale pid file {found.path} ({found.reason}); nothing was stopped")
    else:
        note("none running")


def cmd_server(args: argparse.Namespace) -> int:
    """Start, stop or describe the long-lived Prefect server. ``status`` exits 0 when it
    runs and answers, 1 when it does not run or does not answer."""
    from infra import prefect_server

    state_dir = args.state_dir or prefect_server.DEFAULT_STATE_DIR
    try:
        if args.action == "up":
            _server_up(args, state_dir)
        elif args.action == "down":
            _server_down(state_dir)
        else:
            healthy, line = prefect_server.status(state_dir)
            print(line)
            return 0 if healthy else EXIT_FAILED_RUN
    except prefect_server.ServerUsageError as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    """Check prefect.yaml and register its deployments with the server PREFECT_API_URL names."""
    from deployments.pools import UnknownWorkPool
    from deployments.register import (
        AUTOMATIONS_FILE,
        PREFECT_FILE,
        PrefectDeployError,
        plan,
        register,
    )
    from infra.prefect_api import api_is_healthy

    # Bad input is reported before any server is asked.
    checked = plan(args.file or PREFECT_FILE, args.automations or AUTOMATIONS_FILE, args.name)
    url = configured_api_url()
    if not url:
        raise UsageError(
            "PREFECT_API_URL is not set: start the server (auction-pipeline server up) and "
            "export the URL it prints"
        )
    if not api_is_healthy(url):
        raise PrefectApiError(
            f"the Prefect server at {url} (PREFECT_API_URL) is not reachable; start it with "
            "`auction-pipeline server up` or correct PREFECT_API_URL"
        )
    try:
        for item in register(checked, args.name):
            print(f"registered {item.name} ({item.object_id})")
    except (PrefectDeployError, UnknownWorkPool) as exc:
        raise PrefectApiError(str(exc)) from exc
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run a Prefect worker (process or Slurm) on the product's work pool (until stopped)."""
    from deployments.pools import PROCESS_POOL, SLURM_POOL, SLURM_WORKER_TYPE

    if not configured_api_url():
        raise UsageError("PREFECT_API_URL is not set: the worker must reach the Prefect server")
    localslurm.use_running_cluster(log=note)
    slurm = args.type == "slurm"
    pool = args.pool or (SLURM_POOL if slurm else PROCESS_POOL)
    prefect = Path(sys.executable).with_name("prefect")
    kind = SLURM_WORKER_TYPE if slurm else "process"
    argv = [str(prefect), "worker", "start", "--pool", pool, "--type", kind]
    note(f"starting: {' '.join(argv)}")
    os.execv(argv[0], argv)
    return 0  # not reached


def cmd_notifier(args: argparse.Namespace) -> int:
    """Mail failed and crashed deployment runs, runs that never started and (if configured)
    the daily digest: once, or every --interval seconds."""
    import httpx

    from infra.digest import digest_at
    from infra.missed_runs import missed_after
    from infra.notifier import DEFAULT_STATE_FILE, MailSettings, Notifier

    try:  # a bad setting is said now, not at the first poll that needs it
        missed_after()
        digest_at()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    url = configured_api_url()
    if not url:
        raise UsageError("PREFECT_API_URL is not set: the notifier reads runs from the server")
    notifier = Notifier(
        url,
        MailSettings.from_environment(),
        args.state_file or DEFAULT_STATE_FILE,
        os.environ.get("AUCTION_PIPELINE_UI_URL"),
        log=note,
    )
    if args.once:
        try:
            sent = notifier.poll_once(wait=True)
        except httpx.HTTPError as exc:
            raise PrefectApiError(f"the notifier could not read runs from {url}: {exc}") from exc
        note(f"{sent} e-mail(s) sent")
        return 0
    notifier.run_forever(args.interval)
    return 0


def cmd_cluster(args: argparse.Namespace) -> int:
    """Start, stop or describe the local Slurm cluster. ``status`` exits 0 when its
    controller runs and answers, 1 when it does not run or does not answer."""
    if args.action == "up":
        localslurm.up(args.state_dir, args.nodes, log=note, accounting=args.accounting)
    elif args.action == "down":
        localslurm.down(args.state_dir, log=note)
    else:
        running, text = localslurm.status(args.state_dir)
        print(text)
        return 0 if running else EXIT_FAILED_RUN
    return 0


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM (``kill``, a scheduler ending a session) as a clean exit: the ``finally``
    blocks run, so a Prefect server or Slurm cluster started for the command is stopped
    instead of outliving it. A second SIGTERM during that cleanup is ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``auction-pipeline`` console script."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "demo-site":
        from sites.demo.server import main as serve_demo

        return serve_demo(extra)
    if extra and args.command != "bench":  # bench parses its own options
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        if args.command == "bench":
            from benchmarks.run import main as bench

            return bench(extra)
        if args.command == "demo":
            return cmd_demo(args)
        if args.command == "run":
            return cmd_run(args)
        if args.command == "reprocess":
            return cmd_reprocess(args)
        if args.command == "lot":
            return cmd_lot(args)
        if args.command == "lot-history":
            return cmd_lot_history(args)
        if args.command == "archive":
            return cmd_archive(args)
        if args.command == "sites":
            return cmd_sites(args)
        if args.command == "server":
            return cmd_server(args)
        if args.command == "deploy":
            return cmd_deploy(args)
        if args.command == "worker":
            return cmd_worker(args)
        if args.command == "notifier":
            return cmd_notifier(args)
        return cmd_cluster(args)
    except (
        UsageError,
        ProfileError,
        SiteDefinitionError,
        FileNotFoundError,
        DeploymentConfigError,
    ) as exc:
        print(f"auction-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (
        PrefectApiError,
        localslurm.LocalClusterError,
        SlurmCommandError,
        FetchError,
        NotifierError,
        DataRootBusy,
        LockingUnsupported,
    ) as exc:
        print(f"auction-pipeline: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    except KeyboardInterrupt:
        print("auction-pipeline: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
