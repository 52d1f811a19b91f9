"""The daily pipeline flow: scrape every site, process each into clean lots, load, archive.

Tasks run on the Dask cluster of the run's ``profile`` (see ``infra/runner.py``). A site's
processing starts as soon as its scrape finishes. A failing site fails its own tasks; the
other sites still finish, and the run ends Failed naming every failed site. One run per data
root and day at a time (``tasks/runlock.py``): a second is refused naming the first. Running
the same day again reuses the day's page backups (nothing is fetched twice) unless ``rescrape``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State
from prefect.futures import PrefectFuture, as_completed

from flows.schedule import current_schedule
from flows.stages import EXPECTED_DURATIONS, Run, crawl_for, data_root_of, outcome
from infra.profiles import load_profile
from infra.runner import ProfileTaskRunner
from tasks.process import ProcessReport


@flow(
    name="daily-pipeline",
    task_runner=ProfileTaskRunner(expected_durations=EXPECTED_DURATIONS),
    log_prints=True,
)
def daily_pipeline(
    date: dt.date | None = None,
    sites: list[str] | None = None,
    profile: str = "local",
    data_root: str | None = None,
    rescrape: bool = False,
    crawl_at: str | None = None,
) -> State[Any]:
    """Scrape, process, load and archive one day's auction sales.

    Args:
        date: the sale date to collect (default: a scheduled run's day in its schedule's
            time zone, ``flows/schedule.py``; an ad hoc run's today).
        sites: site names from ``sites/*.yaml`` (default: all).
        profile: cluster profile from ``infra/profiles.yaml``: local, dev or prod.
        data_root: where backups, database and archive live (default: ``data/``).
        rescrape: fetch sites again even if the day's page backup exists.
        crawl_at: for sites crawled several times a day, this crawl's UTC time ("06:00"),
            or "scheduled": the run's scheduled start (day and time). Each crawl keeps its
            own backups and observations; unset, the run is the day's one crawl.
    """
    load_profile(profile)  # a bad profile fails the run here, before any data is touched
    schedule = current_schedule()
    crawl = crawl_for(date, crawl_at, schedule)
    root = data_root_of(data_root)
    with Run.start(crawl.day, root, sites, crawl, schedule) as run:
        scrapes = {run.submit_scrape(name, rescrape): name for name in run.sites}
        processing: dict[PrefectFuture[ProcessReport], str] = {}
        for future in as_completed(list(scrapes)):
            name = scrapes[future]
            scrape, error = outcome(future)
            if scrape is None:
                run.failures[name] = f"scrape: {error}"
                continue
            run.scraped[name] = scrape
            run.places.append(scrape.place)
            processing[run.submit_process(name)] = name
        run.collect_processing(processing)
        run.load_and_archive()
        return run.final_state()
