"""Re-extract a past day from its stored page backups, without touching the sites.

After a selector fix in ``sites/<name>.yaml`` (say, because the layout check quarantined a
day), this flow processes the day's WARC files again, every crawl of the day in time order,
loads the result (replacing those crawls' observations) and rebuilds the day's archive. No
request is sent to any auction site.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.client.schemas.objects import State

from flows.stages import EXPECTED_DURATIONS, Run
from infra.profiles import load_profile
from infra.runner import ProfileTaskRunner
from sites.loader import SiteDefinitionError
from tasks.storage import DataRoot, default_data_root


@flow(
    name="reprocess-day",
    task_runner=ProfileTaskRunner(expected_durations=EXPECTED_DURATIONS),
    log_prints=True,
)
def reprocess_day(
    date: dt.date,
    sites: list[str] | None = None,
    profile: str = "local",
    data_root: str | None = None,
    drop_sites: list[str] | None = None,
) -> State[Any]:
    """Process, load and archive ``date`` again from its WARC files.

    Args:
        date: the day to reprocess.
        sites: site names (default: every site with a page backup for that day).
        profile: cluster profile from ``infra/profiles.yaml``.
        data_root: where backups, database and archive live (default: ``data/``).
        drop_sites: sites whose backups are gone from ``warc/<date>/`` and that the rebuilt
            bag may leave out (the previous bag is kept under ``archive/.superseded/``);
            without it such a rebuild is refused, naming how to restore them.
    """
    load_profile(profile)  # a bad profile fails the run here, before any data is touched
    root = Path(data_root) if data_root else default_data_root()
    crawls = DataRoot(root).crawls_of(date)
    names = sites or backed_up_sites(root, date)
    if not names:
        raise SiteDefinitionError(f"no page backups for {date} in {DataRoot(root).warc_dir(date)}")
    with Run.start(date, root, names) as run:
        # Every crawl of the day in time order, each loaded before the next (the lots'
        # latest state is the last crawl's); the day's bag once, over all of them.
        for crawl, backed_up in crawls.items():
            wanted = [name for name in run.sites if name in backed_up]
            if not wanted:
                continue
            run.crawl, run.processed = crawl, {}
            run.collect_processing({run.submit_process(name): name for name in wanted})
            if not run.load():
                break
        else:
            run.archive(drop_sites)
        return run.final_state()


def backed_up_sites(root: Path, day: dt.date) -> list[str]:
    """The sites with a complete WARC file of a crawl of ``day``."""
    return sorted({name for names in DataRoot(root).crawls_of(day).values() for name in names})
