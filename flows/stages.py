"""The pipeline's steps as Prefect tasks, and the bookkeeping the flows share.

Prefect sees one task run per site and step (never one per page or lot: a Prefect task run
costs about 0.2 s on these clusters against 5 ms for a plain Dask call). ``Run`` collects
what each finished task reported, so a failing site fails alone and the run's summary, the
archive's provenance and the final state are built from one record.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import distributed
from distributed import KilledWorker
from prefect import Task, task
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.objects import State
from prefect.context import FlowRunContext, get_run_context
from prefect.futures import PrefectFuture, as_completed
from prefect.logging import get_run_logger
from prefect.states import Completed, Crashed, Failed

from flows.held import held, holding
from flows.progress import ProgressArtifact
from flows.schedule import Scheduled, late_after, lateness_text
from infra import watchdog
from infra.runner import ProfileTaskRunner
from sites.loader import SiteDefinition, load_sites
from tasks.archive import ArchiveReport, archive_day
from tasks.crawlid import CrawlId, at_time, scheduled
from tasks.process import ProcessReport, process_site
from tasks.runinfo import RunPlace, slurm_jobs, where_am_i
from tasks.runlock import day_lock, lock_warning
from tasks.scrape import ScrapeReport, scrape_site
from tasks.sharedlimit import SharedSiteLimit, ensure_rate_limit
from tasks.storage import DataRoot, default_data_root
from tasks.store import (
    DatabaseConnectionError,
    LoadReport,
    check_database,
    database_url_for,
    followed_lots,
    load_day,
    recent_lot_counts,
)

T = TypeVar("T")
P = ParamSpec("P")

PLACE_LOG_PREFIX = "running in"


class SitesFailed(RuntimeError):
    """Some sites failed; the others were loaded and archived. Carries the run's summary.

    The flow's Failed state holds this exception, not the summary dict: Prefect turns a failed
    state's data into the exception it raises, and a dict is no exception.
    """

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message, summary)
        self.message = message
        self.summary = summary

    def __str__(self) -> str:
        return self.message


def located(fn: Callable[P, T]) -> Callable[P, T]:
    """``fn``, logging first (to the task run, so to the UI and the failure e-mails) which
    Slurm job and node it runs on: a failed task returns no report to say it."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        place = where_am_i()
        job = (
            f"Slurm job {place.slurm_job_id} ({place.partition})"
            if place.slurm_job_id
            else "no Slurm job"
        )
        get_run_logger().info(
            "%s %s on node %s, pid %s", PLACE_LOG_PREFIX, job, place.node, place.pid
        )
        return fn(*args, **kwargs)

    return wrapper


def data_root_of(data_root: str | None) -> Path:
    """The run's data root; refuses an empty or unresolved one rather than writing elsewhere.

    Here, not in flows/daily.py: Prefect loads that file as a module named ``daily`` that
    Dask workers cannot import, so the flow function must use only importable helpers.

    ``prefect deploy`` registers an unset ``{{ $VAR }}`` as an empty string; taken as "no
    data root", the run would write to the default root instead of the deployment's.
    """
    if data_root is None:
        return default_data_root()
    if not data_root.strip() or "{{" in data_root:
        raise ValueError(
            f"parameter data_root is {data_root!r}: the deployment was registered without the "
            "environment variable prefect.yaml names for it; set it and register again "
            "(`auction-pipeline deploy` names what is missing)"
        )
    return Path(data_root)


def scrape_with_progress(
    site: SiteDefinition,
    day: dt.date | CrawlId,
    data_root: str,
    rescrape: bool = False,
    revisit: list[str] | None = None,
) -> ScrapeReport:
    """:func:`scrape_site`, showing the lot pages fetched so far as a progress artifact
    (key ``scrape-<site>``) on the site's task run in the UI, and sharing the site's rate
    with every other run that crawls it (``tasks/sharedlimit.py``)."""
    progress = ProgressArtifact(
        f"scrape-{site.name}", f"{site.name}: lot pages fetched for the crawl {day}"
    )
    ensure_rate_limit(site.name, site.politeness)
    with SharedSiteLimit(site.name, site.politeness, get_run_logger().info) as shared:
        return scrape_site(
            site, day, data_root, rescrape, progress=progress.report, revisit=revisit or (),
            shared=shared,
        )  # fmt: skip


scrape_task = task(name="scrape-site", task_run_name="scrape-{site.name}")(
    located(scrape_with_progress)
)
process_task = task(name="process-site", task_run_name="process-{site.name}")(located(process_site))
load_task = task(name="load-database", task_run_name="load-{day}")(located(load_day))
archive_task = task(name="archive-day", task_run_name="archive-{day}")(located(archive_day))

# A site's scrape is slow by design (polite rate limits): tell Dask, so it scales out at once.
# Dask's key prefix is the task function's name.
EXPECTED_DURATIONS = {scrape_with_progress.__name__: "10m", process_site.__name__: "1m"}


def outcome(future: PrefectFuture[T]) -> tuple[T, None] | tuple[None, str]:
    """The task's result, or None and its error as ``Type: message``.

    A task given up because its workers kept dying (Dask's ``KilledWorker``) gets what Slurm
    said of those worker jobs (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...) appended.
    """
    try:
        return future.result(), None
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KilledWorker):
            context = FlowRunContext.get()
            runner = context.task_runner if context else None
            if isinstance(runner, ProfileTaskRunner):
                error = f"{error} {runner.lost_workers_report()}".rstrip()
            _crash_task_run(future, error)
        return None, error
    finally:
        _release(future)


def _release(future: PrefectFuture[Any]) -> None:
    """Let Dask forget a task's result once the flow has read it.

    Dask keeps a result in the memory of the worker that computed it for as long as a
    future refers to it, and recomputes it if that worker is lost: a site scraped (or
    processed) minutes ago would run again because the job it ran in was pre-empted later
    (prefect #15442). Nothing here reads a result twice, and no task takes another's
    result as input, so released keys are never wanted again.
    """
    wrapped = getattr(future, "wrapped_future", None)
    if isinstance(wrapped, distributed.Future):
        wrapped.release()  # type: ignore[no-untyped-call]


def _crash_task_run(future: PrefectFuture[Any], message: str) -> None:
    """Mark a task run whose workers all died Crashed: its engine died with the last of
    them, so nobody else will, and the UI would show it Running for ever."""
    from prefect.client.orchestration import get_client

    try:
        with get_client(sync_client=True) as client:
            client.set_task_run_state(future.task_run_id, Crashed(message=message), force=True)
    except Exception as exc:  # the run's own failure is reported regardless
        get_run_logger().warning("could not mark task run %s Crashed: %s", future.task_run_id, exc)


@dataclass
class Run:
    """What one flow run's tasks reported, site by site."""

    day: dt.date
    data_root: str
    database_url: str
    flow_run_id: str
    flow_name: str
    sites: dict[str, SiteDefinition]
    crawl: CrawlId  # which crawl of the day (tasks/crawlid.py)
    results: Path  # where its task results are held while it runs (flows/held.py)
    failures: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the run's own: load, archive
    places: list[RunPlace] = field(default_factory=list)
    scraped: dict[str, ScrapeReport] = field(default_factory=dict)
    processed: dict[str, ProcessReport] = field(default_factory=dict)
    loaded: LoadReport | None = None
    archived: ArchiveReport | None = None
    schedule: Scheduled | None = None  # a deployment run's scheduled start
    late_by: dt.timedelta | None = None  # how late it started, past the threshold

    @classmethod
    @contextmanager
    def start(
        cls,
        day: dt.date,
        data_root: Path,
        sites: list[str] | None,
        crawl: CrawlId | None = None,
        schedule: Scheduled | None = None,
    ) -> Iterator[Run]:
        """The record of the current flow run, for ``sites`` (default: all) on ``day``
        (``crawl``: which crawl of it; default the day's own), holding the data root's lock
        of the day for the block (``tasks/runlock.py``).

        Creates the data root group-private if it is new (``DataRoot.prepare``) and checks
        the database, so an unreachable or damaged one is said now, not after the crawl. A
        deployment run (``schedule``) that starts late says so in its log and summary.
        Task results are held under the data root while the block runs (``flows/held.py``).
        """
        context = get_run_context()
        assert isinstance(context, FlowRunContext) and context.flow_run is not None
        logger = get_run_logger()
        for warning in (DataRoot(data_root).prepare(), lock_warning(data_root)):
            if warning:
                logger.warning(warning)
        late_by = schedule.late_by(dt.datetime.now(dt.UTC), late_after()) if schedule else None
        if schedule and late_by:
            logger.warning(
                "this run started %s late: it was scheduled for %s (the worker was down, the "
                "work pool paused or the queue full?); it collects %s all the same",
                lateness_text(late_by),
                schedule.local(),
                day,
            )
        purpose = f"{context.flow.name if context.flow else 'flow'} run {context.flow_run.id}"
        # Ends the run's task runs and worker jobs should this process be killed outright.
        run_id = str(context.flow_run.id)
        watchdog.start(run_id, DataRoot(data_root).slurm_logs.parent / f"watchdog-{run_id}.log")
        results = DataRoot(data_root).task_results(run_id)
        with day_lock(data_root, day, purpose), holding(results, logger.info):
            database_url = database_url_for(data_root)
            check_database(database_url)
            yield cls(
                day=day,
                data_root=str(data_root),
                database_url=database_url,
                flow_run_id=str(context.flow_run.id),
                flow_name=context.flow.name if context.flow else "",
                sites={s.name: s for s in load_sites(sites)},
                crawl=crawl or CrawlId(day),
                schedule=schedule,
                late_by=late_by,
                results=results,
            )

    def _held(self, step: Task[P, T]) -> Task[P, T]:
        """``step`` with its result held on the data root (``flows/held.py``)."""
        return held(step, self.results)

    def submit_scrape(self, name: str, rescrape: bool) -> PrefectFuture[ScrapeReport]:
        """Start one site's crawl, with the lots the database follows until they close
        (``tasks/following.py``; none without a database yet)."""
        site = self.sites[name]
        try:
            revisit = followed_lots(self.database_url, site, self.crawl)
        except DatabaseConnectionError as exc:
            get_run_logger().warning("%s: followed lots not revisited: %s", name, exc)
            revisit = []
        if revisit:
            get_run_logger().info("%s: revisiting %d followed lots", name, len(revisit))
        return self._held(scrape_task).submit(site, self.crawl, self.data_root, rescrape, revisit)

    def submit_process(self, name: str) -> PrefectFuture[ProcessReport]:
        """Start processing one site's stored pages, with its recent lot counts.

        Without the database the count check is skipped (logged); the load step will then
        fail with the connection error, site data staying in its per-site file.
        """
        try:
            history = recent_lot_counts(self.database_url, name, self.crawl)
        except DatabaseConnectionError as exc:
            get_run_logger().warning("%s: lot-count check skipped: %s", name, exc)
            history = []
        return self._held(process_task).submit(
            self.sites[name], self.crawl, self.data_root, history
        )

    def collect_processing(self, futures: dict[PrefectFuture[ProcessReport], str]) -> None:
        """Wait for process tasks, recording each site's report or failure."""
        for future in as_completed(list(futures)):
            name = futures[future]
            report, error = outcome(future)
            if report is None:
                self.failures[name] = f"process: {error}"
            else:
                self.processed[name] = report
                self.places.append(report.place)

    def load_and_archive(self, drop_sites: list[str] | None = None) -> None:
        """Load the sites that processed cleanly (one writer), then archive the whole day.

        A load or archive that fails is recorded as the run's error (the run then ends Failed
        with its summary); the archive is not rebuilt after a failed load. ``drop_sites``
        may leave out of the rebuilt bag sites whose backups are gone (``archive_day``).
        """
        if self.load():
            self.archive(drop_sites)

    def load(self) -> bool:
        """Load the current crawl's sites that processed cleanly (one writer); False when
        nothing was loaded (nothing processed, or the load failed: the run's error)."""
        if not self.processed:
            return False
        ok = sorted(self.processed)
        loaded, error = outcome(
            self._held(load_task).submit(
                self.crawl,
                [self.sites[n] for n in ok],
                [self.processed[n].processed_file for n in ok],
                self.database_url,
            )
        )
        if loaded is None:
            self.errors.append(f"load: {error}")
            return False
        self.loaded = loaded
        self.places.append(loaded.place)
        for name, why in loaded.failed_sites.items():
            self.failures[name] = f"load: {why}"
        return True

    def archive(self, drop_sites: list[str] | None = None) -> None:
        """Rebuild the day's bag from every crawl of the day (``archive_day``); a failure is
        the run's error."""
        archived, error = outcome(
            self._held(archive_task).submit(
                self.day,
                self.data_root,
                self.database_url,
                self.flow_run_id,
                self.places,
                drop_sites,
            )
        )
        if archived is None:
            self.errors.append(f"archive: {error}")
            return
        self.archived = archived
        self.places.append(archived.place)
        if archived.superseded:
            get_run_logger().warning(
                "the previous bag of %s held backups the new one does not (a rescrape or a "
                "dropped site); it is kept at %s",
                self.day,
                archived.superseded,
            )

    def publish(self) -> None:
        """Leave the run's per-site table in the Prefect UI (Artifacts tab of the run)."""
        loaded = self.loaded
        rows = []
        for name, row in self.summary()["sites"].items():
            warnings = []
            if row["invalid"]:
                warnings.append(f"{row['invalid']} invalid lots (quarantined)")
            if row["failed_urls"]:
                warnings.append(f"{row['failed_urls']} URLs failed")
            if row["reused_backup"]:
                warnings.append("reused the day's page backup")
            warnings.extend(row["warnings"])  # the scrape's own, e.g. listing.max_pages reached
            rows.append(
                {
                    "site": name,
                    "status": "FAILED" if row["error"] else "ok",
                    "pages": row["pages"],
                    "lots": row["lots"],
                    "found": row["found"],
                    "revisited": row["revisited"],
                    "new lots": loaded.new_lots_by_site.get(name, 0) if loaded else 0,
                    "sellers": row["sellers"],
                    "warnings": "; ".join(warnings) or "",
                    "error": row["error"] or "",
                }
            )
        late = (
            f" (scheduled for {self.schedule.local()}, started {lateness_text(self.late_by)} late)"
            if self.schedule and self.late_by
            else ""
        )
        create_table_artifact(
            rows,
            key=f"{self.flow_name}-sites".lower(),
            description=f"{self.flow_name} {self.day}{late}: per-site results",
        )

    def final_state(self) -> State[Any]:
        """Completed with the summary, or Failed naming every failed site and why."""
        self.publish()
        summary = self.summary()
        if self.failures or self.errors:
            shown = "; ".join(f"{site}: {why}" for site, why in sorted(self.failures.items()))
            parts = [f"{len(self.failures)} site(s) failed: {shown}"] if self.failures else []
            message = "; ".join(parts + self.errors)
            return Failed(message=message, data=SitesFailed(message, summary))
        return Completed(message=f"{len(self.processed)} site(s) collected", data=summary)

    def _scheduled(self) -> dict[str, Any] | None:
        """A deployment run's schedule for the summary: when, in which zone, how late."""
        if self.schedule is None:
            return None
        late = self.late_by
        return {
            "at": self.schedule.at.astimezone(dt.UTC).isoformat(),
            "local": self.schedule.local(),
            "timezone": self.schedule.timezone,
            "late_minutes": round(late.total_seconds() / 60) if late else None,
        }

    def summary(self) -> dict[str, Any]:
        """Per-site counts, database, archive, failures and the Slurm jobs that did the work."""
        per_site = {}
        for name in sorted({*self.scraped, *self.processed, *self.failures}):
            s, p = self.scraped.get(name), self.processed.get(name)
            per_site[name] = {
                "pages": (s.listing_pages + s.search_pages + s.lot_pages) if s else 0,
                "lot_pages": s.lot_pages if s else 0,
                "images": s.images if s else 0,
                "failed_urls": len(s.failed_urls) if s else 0,
                "requests": s.requests_sent if s else 0,
                "reused_backup": s.reused if s else None,
                "warnings": list(s.warnings) if s else [],
                "lots": p.lots if p else 0,
                "found": s.found if s else 0,
                "revisited": s.revisited if s else 0,
                "invalid": p.invalid if p else 0,
                "sellers": p.sellers if p else 0,
                "error": self.failures.get(name),
            }
        loaded = self.loaded
        return {
            "flow": self.flow_name,
            "flow_run_id": self.flow_run_id,
            "date": self.day.isoformat(),
            "crawl": self.crawl.id,
            "scheduled": self._scheduled(),
            "data_root": self.data_root,
            "sites": per_site,
            "database": loaded.database if loaded else None,
            "new_lots": loaded.new_lots if loaded else 0,
            "archive": self.archived.path if self.archived else None,
            "superseded_archive": self.archived.superseded if self.archived else None,
            "errors": list(self.errors),
            "slurm_jobs": slurm_jobs(self.places),
            "task_places": [asdict(p) for p in self.places],
        }


# Here, not in flows/daily.py: a deployment loads that file as a module the Dask workers cannot
# import, and a function defined there travels with the flow to every worker.
def crawl_for(
    day: dt.date | None, crawl_at: str | None, schedule: Scheduled | None = None
) -> CrawlId:
    """The crawl a run makes: the day's own (``crawl_at`` unset), the day at a UTC time, or
    the flow run's scheduled start ("scheduled"); ValueError for any other ``crawl_at``.

    Without ``day``, a deployment's run collects the day it was scheduled for in its
    schedule's time zone (``schedule``, ``flows/schedule.py``); an ad hoc run, today.
    """
    if crawl_at == "scheduled":
        if schedule is not None:
            return scheduled(schedule.at)
        context = FlowRunContext.get()
        run = context.flow_run if context else None
        start = run.expected_start_time if run else None
        return scheduled(start or dt.datetime.now(dt.UTC))
    chosen = day or (schedule.day if schedule else dt.date.today())
    return CrawlId(chosen) if crawl_at is None else at_time(chosen, crawl_at)
