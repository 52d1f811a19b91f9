"""Run the pipeline from Python: the one entry point behind ``auction-pipeline run``,
``reprocess`` and ``demo``, and the one a notebook calls.

:func:`run_pipeline` checks its input before anything starts (profile, sites, reprocess
preconditions), makes sure there is a Prefect API (starting a server for the run when none is
configured), runs the flow and returns its summary as a dict. Progress goes to stderr.
"""

from __future__ import annotations

import logging
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from infra import localslurm
from infra.prefect_api import configured_api_url, prefect_api
from infra.profiles import SlurmProfile, load_profile
from sites.loader import load_sites

if TYPE_CHECKING:
    from tasks.sandbox import ImportReport


class UsageError(Exception):
    """Bad input from the user; printed as one line, exit code 2."""


def note(message: str) -> None:
    """Progress for the user goes to stderr; stdout carries only the result."""
    print(message, file=sys.stderr, flush=True)


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest existing ancestor."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _why_not_writable(directory: Path) -> str | None:
    """Why this process cannot create files in ``directory``, or None if it can."""
    if os.access(directory, os.W_OK | os.X_OK):
        return None
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return "read-only filesystem"
    return f"no write permission for user {os.getuid()}"


def checked_data_root(data_root: Path | str | None) -> Path:
    """The run's data root, resolved, once it is known to be (or to be creatable as) a
    directory this process can write: refused with UsageError before any server, cluster or
    crawl starts, instead of failing mid-run with a traceback."""
    from tasks.storage import default_data_root

    if data_root is not None and not str(data_root).strip():
        raise UsageError(
            f"data root {str(data_root)!r} is empty; give a directory, or none for the "
            "default ($AUCTION_PIPELINE_DATA_ROOT or data/)"
        )
    root = Path(data_root or default_data_root()).resolve()
    existing = _nearest_existing(root)
    if existing == root and not root.is_dir():
        raise UsageError(
            f"data root {root} is a file, not a directory; give a directory (it is created "
            "when missing)"
        )
    if not existing.is_dir():
        raise UsageError(f"data root {root} cannot be created: {existing} is a file")
    why = _why_not_writable(existing)
    if why and existing == root:
        raise UsageError(f"data root {root} is not writable ({why}); give one you can write to")
    if why:
        raise UsageError(
            f"data root {root} cannot be created: {existing} is not writable ({why}); "
            "create the directory first or give another one"
        )
    return root


def run_pipeline(
    profile_name: str,
    day: date | None,
    sites: list[str] | None,
    data_root: Path | str | None,
    *,
    rescrape: bool = False,
    crawl_at: str | None = None,
    reprocess: bool = False,
    drop_sites: list[str] | None = None,
    backups_from: Path | None = None,
) -> dict[str, Any]:
    """Validate the input, make sure a Prefect API exists, run the flow; return its summary.

    ``crawl_at`` is the crawl's UTC time (``--at``) for sites crawled several times a day.
    ``reprocess`` runs the reprocess-day flow (stored pages only) instead of the daily one;
    ``drop_sites`` lets it rebuild the day's bag without sites whose backups are gone.
    ``backups_from`` (a sandbox, ``tasks/sandbox.py``) first copies the day's page backups
    of another data root, only reading it, into this run's own.
    A flow that raises still gives a summary with the date and every site, each naming why.
    """
    root = checked_data_root(data_root)
    profile = load_profile(profile_name)
    definitions = load_sites(sites) if sites or not reprocess else []
    if isinstance(profile, SlurmProfile):
        localslurm.use_running_cluster(log=note)
        conf = os.environ.get("SLURM_CONF")
        on_this_host = bool(conf) and localslurm.is_local_cluster_conf(Path(conf or ""))
        if not configured_api_url() and not on_this_host:
            raise UsageError(
                f"profile {profile.name!r} runs workers on other nodes, which cannot reach a "
                "Prefect server on this node's loopback: export PREFECT_API_URL=http://<host>:"
                "4200/api for a server the compute nodes can reach "
                "(README: 'Running on your cluster')"
            )

    from flows.daily import daily_pipeline
    from flows.reprocess import backed_up_sites, reprocess_day
    from flows.stages import SitesFailed
    from tasks.runlock import check_free

    # Dask's scheduler chatter (workers joining and leaving) is not news to a researcher.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    names = [d.name for d in definitions]
    imported = None
    if backups_from is not None:
        if rescrape:
            raise UsageError(
                "--rescrape fetches the sites again and --backups-from works on stored pages: "
                "give one of them"
            )
        check_free(root, day or date.today())
        imported = _import_backups(backups_from, root, day or date.today(), names or None)
        note(imported.text())
    if reprocess:
        assert day is not None
        backed_up = backed_up_sites(root, day)
        missing = [n for n in names if n not in backed_up]
        if missing or not (names or backed_up):
            raise UsageError(
                f"no page backup for {day} of {', '.join(missing) or 'any site'} in "
                f"{root / 'warc' / day.isoformat()}; reprocess works on days already scraped"
            )
    check_free(root, day or date.today())  # refuse a second run of the day before it starts
    with prefect_api(log=note):
        if reprocess:
            assert day is not None
            state = reprocess_day(
                date=day,
                sites=names or None,
                profile=profile.name,
                data_root=str(root),
                drop_sites=drop_sites,
                return_state=True,
            )
        else:
            state = daily_pipeline(
                date=day,
                sites=names,
                profile=profile.name,
                data_root=str(root),
                rescrape=rescrape,
                crawl_at=crawl_at,
                return_state=True,
            )
        # _sync: a notebook kernel runs an event loop, where result() would return a coroutine.
        summary: Any = cast(Any, state).result(raise_on_failure=False, _sync=True)
    if isinstance(summary, SitesFailed):
        summary = dict(summary.summary)
    if not isinstance(summary, dict):
        everyone = names or (backed_up_sites(root, day) if reprocess and day else [])
        summary = _summary_of_a_raised_flow(summary, day, everyone, root)
    summary["state"] = state.type.value
    summary["message"] = state.message
    if imported is not None:
        summary["backups_from"] = {"source": imported.source, "copied": imported.copied,
                                   "kept": imported.kept}  # fmt: skip
    summary.setdefault("flow_run_id", str(state.state_details.flow_run_id))
    return cast(dict[str, Any], summary)


def _import_backups(source: Path, root: Path, day: date, sites: list[str] | None) -> ImportReport:
    """:func:`tasks.sandbox.import_backups`, its refusals as usage errors (nothing copied)."""
    from tasks.sandbox import SandboxError, import_backups
    from tasks.storage import DataRoot

    if not source.is_dir():
        raise UsageError(f"--backups-from {source} is not a directory (a data root)")
    try:
        return import_backups(source, DataRoot(root), day, sites)
    except SandboxError as exc:
        raise UsageError(str(exc)) from None


def _summary_of_a_raised_flow(
    error: object, day: date | None, names: list[str], root: Path
) -> dict[str, Any]:
    """The summary of a flow that raised before it could report (a busy or damaged data
    root, say): its date and every site it was to collect, each with the error."""
    why = f"not run: {type(error).__name__}: {error}"
    row = {"pages": 0, "lots": 0, "images": 0, "failed_urls": 0, "error": why}
    return {
        "date": (day or date.today()).isoformat(),
        "data_root": str(root),
        "sites": {name: dict(row) for name in names},
        "error": str(error),
    }
