"""Progress of long work inside one Prefect task, shown in the UI as a progress artifact.

The pipeline runs one Prefect task per site and step and loops over pages and lots inside it
(a Prefect task per item would cost far more than the item: ``benchmarks/``). A polite crawl
of a big site takes hours, so the task reports how far it got through a
:class:`ProgressArtifact`: created on the first report, updated in place at most every
``interval`` seconds (and always at the end), so a crawl of 10,000 pages costs a few hundred
API calls, not 10,000. Reporting never fails the work: an unreachable API is logged once.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any, cast
from uuid import UUID

from prefect.artifacts import create_progress_artifact, update_progress_artifact

PROGRESS_INTERVAL_SECONDS = 5.0

log = logging.getLogger(__name__)


def artifact_key(text: str) -> str:
    """``text`` as a Prefect artifact key (lowercase letters, digits and dashes)."""
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "progress"


class ProgressArtifact:
    """``report(done, total)`` keeps a progress artifact (key ``key``) up to date."""

    def __init__(
        self, key: str, description: str, interval: float = PROGRESS_INTERVAL_SECONDS
    ) -> None:
        self.key = artifact_key(key)
        self.description = description
        self.interval = interval
        self.artifact_id: UUID | None = None
        self._last = float("-inf")
        self._failed = False

    def report(self, done: int, total: int) -> None:
        """``done`` of ``total`` items finished; sent if the interval passed or all are done."""
        now = time.monotonic()
        if self._failed or (done < total and now - self._last < self.interval):
            return
        self._last = now
        percent = 100.0 * done / total if total else 100.0
        try:
            if self.artifact_id is None:
                # _sync: also from a notebook, whose kernel runs an event loop.
                self.artifact_id = cast(Any, create_progress_artifact)(
                    percent, key=self.key, description=self.description, _sync=True
                )
            else:
                cast(Any, update_progress_artifact)(self.artifact_id, percent, _sync=True)
        except Exception as exc:  # progress is a courtesy; the work goes on without it
            self._failed = True
            log.warning("progress of %s not reported to the Prefect API: %s", self.key, exc)
