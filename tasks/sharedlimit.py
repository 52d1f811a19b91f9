"""Politeness across runs: every run that crawls a site shares that site's rate.

Within one run, one fetcher paces a site (``tasks/politeness.py``). But the prod, dev and
marketplaces deployments, a notebook and an ad hoc ``run`` may crawl the same site at the same
time, from different Slurm jobs, each at the site's full ``requests_per_second``. So each
request also takes a slot of a Prefect global concurrency limit kept for the site on the
Prefect server every run reports to: ``auction-pipeline:site:<name>:rate``, a rate limit whose
``slot_decay_per_second`` is the site's ``requests_per_second`` and whose limit (the burst) is
:func:`burst`. All runs together stay within the site's rate plus that burst.

The limit is created, or updated to the site file's values, when a run's scrape of the site
starts; the UI shows it under *Concurrency*. A request that waits longer than
``max_shared_wait_seconds`` fails like any other (a site that never frees fails alone), and
waiting is logged: "waited 3.1 s for harrow-finch's shared rate limit ... another run is
crawling it". Runs that report to different Prefect servers (an ad hoc ``run`` starts its
own when ``PREFECT_API_URL`` is unset) do not share it.

The site's ``concurrency`` (requests in flight at once) holds within each run only: sharing it
too took a lease per request, two more writes to the Prefect server each time, and under the
full test suite's load the server fell behind (runs timed out, a lot page was lost to a failed
call; see the issue notes). The shared rate keeps the runs' requests apart anyway whenever
the site answers within its interval.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

import httpx

from sites.loader import Politeness
from tasks.politeness import FetchError

NAME_PREFIX = "auction-pipeline:site:"
# A wait shorter than this is the limiter's own granularity, not another run.
NOTICEABLE_WAIT_SECONDS = 1.0
REPORT_EVERY_SECONDS = 60.0


def burst(politeness: Politeness) -> int:
    """Requests the rate limit lets through at once after a pause: a second's worth, at
    least two (Prefect counts decayed slots in whole slots, so one would stall a lone run)."""
    return max(2, math.ceil(politeness.requests_per_second))


def rate_limit_name(site: str) -> str:
    """The name of ``site``'s shared rate limit."""
    return f"{NAME_PREFIX}{site}:rate"


def ensure_rate_limit(site: str, politeness: Politeness) -> None:
    """Create the site's rate limit on the Prefect server, or set it to ``politeness``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name, limit, decay = rate_limit_name(site), burst(politeness), politeness.requests_per_second
    with get_client(sync_client=True) as client:
        try:
            held = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run made it just now
                client.create_global_concurrency_limit(
                    GlobalConcurrencyLimitCreate(
                        name=name, limit=limit, slot_decay_per_second=decay, active=True
                    )
                )
            return
        if (held.limit, held.slot_decay_per_second, held.active) != (limit, decay, True):
            client.update_global_concurrency_limit(
                name,
                GlobalConcurrencyLimitUpdate(limit=limit, slot_decay_per_second=decay, active=True),
            )


class SharedSiteLimit:
    """The slot every request of one site's crawl takes in the rate all runs share.

    One Prefect client serves the whole crawl (its threads share it). Slots are taken with
    the client's own call rather than ``prefect.concurrency.sync.rate_limit``, which opens a
    client and emits an event for every call: about 100 ms per request, more than the whole
    interval of a fast site. If the server cannot be asked (down, overloaded: anything but
    its "wait" answer), the request goes ahead paced by this run alone, with a warning at
    most once a minute: losing a page to the server's trouble would be worse.
    """

    def __init__(self, site: str, politeness: Politeness, note: Callable[[str], None]) -> None:
        from prefect.client.orchestration import get_client

        self.site = site
        self.politeness = politeness
        self.note = note
        self.waited_seconds = 0.0
        self._last_report = -math.inf
        self._last_trouble = -math.inf
        self._lock = threading.Lock()
        self._rate = rate_limit_name(site)
        self._client = get_client(sync_client=True)

    def __enter__(self) -> SharedSiteLimit:
        self._client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.__exit__(None, None, None)

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Take a slot of the site's shared rate before one request to ``url``."""
        started = time.monotonic()
        if self._take(url, started + self.politeness.max_shared_wait_seconds):
            self._waited(time.monotonic() - started)
        yield

    def _take(self, url: str, deadline: float) -> bool:
        """Ask until granted, sleeping the Retry-After the server sends with each refusal;
        False if the server could not be asked (the request goes ahead unshared).

        The server grants a slot of a limit that does not exist (deleted in the UI during
        the crawl) without a word: the limit is then made again, once, and asked anew.
        """
        if time.monotonic() - self._last_trouble < REPORT_EVERY_SECONDS:
            return False  # the server failed just now: not asked again for a minute
        remade = False
        while True:
            try:
                granted = self._client.increment_concurrency_slots([self._rate], 1, "rate_limit")
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:
                    self._trouble(f"HTTP {exc.response.status_code}")
                    return False
                pause = float(exc.response.headers.get("Retry-After") or 0.1)
            except httpx.HTTPError as exc:
                self._trouble(f"{type(exc).__name__}: {exc}")
                return False
            else:
                if granted.json():
                    return True
                if remade:
                    raise FetchError(
                        f"{url}: {self.site}'s shared rate limit vanishes from the Prefect "
                        "server as soon as it is made; the request is not sent"
                    )
                ensure_rate_limit(self.site, self.politeness)
                remade, pause = True, 0.0
            if time.monotonic() + pause > deadline:
                raise FetchError(
                    f"{url}: waited more than {self.politeness.max_shared_wait_seconds:g} s for "
                    f"{self.site}'s shared rate limit (other runs crawling the site hold it; "
                    "politeness.max_shared_wait_seconds)"
                )
            time.sleep(min(pause, 5.0))

    def _trouble(self, what: str) -> None:
        """The server could not be asked: say so, at most once a minute."""
        with self._lock:
            now = time.monotonic()
            if now - self._last_trouble < REPORT_EVERY_SECONDS:
                return
            self._last_trouble = now
        self.note(
            f"{self.site}'s shared rate limit could not be asked ({what}); this run's requests "
            "go on paced by this run alone for a minute, then it is asked again"
        )

    def _waited(self, seconds: float) -> None:
        """Count a wait; log a noticeable one, at most once a minute."""
        if seconds < NOTICEABLE_WAIT_SECONDS:
            return
        with self._lock:
            self.waited_seconds += seconds
            now = time.monotonic()
            if now - self._last_report < REPORT_EVERY_SECONDS:
                return
            self._last_report = now
            total = self.waited_seconds
        self.note(
            f"waited {seconds:.1f} s ({total:.0f} s in all) for {self.site}'s shared rate "
            f"limit of {self.politeness.requests_per_second:g} requests/s: another run is "
            "crawling it"
        )
