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
from typing import Any, cast

from infra import localslurm
from infra.prefect_api import configured_api_url, prefect_api
from infra.profiles import SlurmProfile, load_profile
from sites.loader import load_sites


class UsageError(Exception):
    """Bad input from the user; printed as one line, exit code 2."""


def note(message: str) -> None:
    """Progress for the user goes to stderr; stdout carries only the result."""
    print(message, file=sys.stderr, flush=True)


def run_pipeline(
    profile_name: str,
    day: date | None,
    sites: list[str] | None,
    data_root: Path | None,
    *,
    rescrape: bool = False,
    reprocess: bool = False,
) -> dict[str, Any]:
    """Validate the input, make sure a Prefect API exists, run the flow; return its summary.

    ``reprocess`` runs the reprocess-day flow (stored pages only) instead of the daily one.
    """
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
    from tasks.storage import default_data_root

    # Dask's scheduler chatter (workers joining and leaving) is not news to a researcher.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    root = (data_root or default_data_root()).resolve()
    names = [d.name for d in definitions]
    if reprocess:
        assert day is not None
        backed_up = backed_up_sites(root, day)
        missing = [n for n in names if n not in backed_up]
        if missing or not (names or backed_up):
            raise UsageError(
                f"no page backup for {day} of {', '.join(missing) or 'any site'} in "
                f"{root / 'warc' / day.isoformat()}; reprocess works on days already scraped"
            )
    with prefect_api(log=note):
        if reprocess:
            assert day is not None
            state = reprocess_day(
                date=day,
                sites=names or None,
                profile=profile.name,
                data_root=str(root),
                return_state=True,
            )
        else:
            state = daily_pipeline(
                date=day,
                sites=names,
                profile=profile.name,
                data_root=str(root),
                rescrape=rescrape,
                return_state=True,
            )
        # _sync: a notebook kernel runs an event loop, where result() would return a coroutine.
        summary: Any = cast(Any, state).result(raise_on_failure=False, _sync=True)
    if isinstance(summary, SitesFailed):
        summary = dict(summary.summary)
    if not isinstance(summary, dict):
        summary = {"error": str(summary)}
    summary["state"] = state.type.value
    summary["message"] = state.message
    summary.setdefault("flow_run_id", str(state.state_details.flow_run_id))
    return cast(dict[str, Any], summary)
