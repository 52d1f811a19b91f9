"""Politeness across runs: every run that crawls a site shares that site's rate and concurrency.

Within one run, one fetcher paces a site (``tasks/politeness.py``). But the prod, dev and
marketplaces deployments, a notebook and an ad hoc ``run`` may crawl the same site at the same
time, from different Slurm jobs, each at the site's full ``requests_per_second``. So each
request also takes a slot of two Prefect global concurrency limits kept for the site on the
Prefect server every run reports to:

- ``auction-pipeline:site:<name>:rate``, a rate limit: ``slot_decay_per_second`` is the site's
  ``requests_per_second`` and the limit (the burst) is :func:`burst`; every request takes one
  slot (Prefect's ``rate_limit``), so all runs together stay within the site's rate plus that
  burst;
- ``auction-pipeline:site:<name>:concurrency``: at most the site's ``concurrency`` requests in
  flight across all runs (a slot held for the length of the request).

Both are created, or updated to the site file's values, when a run's scrape of the site
starts; the UI shows them under *Concurrency*. A request that waits longer than
``max_shared_wait_seconds`` fails like any other (a site that never frees fails alone), and
waiting is logged: "waited 3.1 s for harrow-finch's shared rate limit ... another run is
crawling it". Runs that report to different Prefect servers (an ad hoc ``run`` starts its
own when ``PREFECT_API_URL`` is unset) do not share them.
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


def limit_names(site: str) -> tuple[str, str]:
    """The rate limit's and the concurrency limit's names for ``site``."""
    return f"{NAME_PREFIX}{site}:rate", f"{NAME_PREFIX}{site}:concurrency"


def ensure_limits(site: str, politeness: Politeness) -> None:
    """Create the site's two limits on the Prefect server, or set them to ``politeness``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    rate, concurrent = limit_names(site)
    wanted = {
        rate: (burst(politeness), politeness.requests_per_second),
        concurrent: (politeness.concurrency, 0.0),
    }
    with get_client(sync_client=True) as client:
        for name, (limit, decay) in wanted.items():
            try:
                held = client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                with suppress(ObjectAlreadyExists):  # another run made it just now
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(
                            name=name, limit=limit, slot_decay_per_second=decay, active=True
                        )
                    )
                continue
            if (held.limit, held.slot_decay_per_second, held.active) != (limit, decay, True):
                client.update_global_concurrency_limit(
                    name,
                    GlobalConcurrencyLimitUpdate(
                        limit=limit, slot_decay_per_second=decay, active=True
                    ),
                )


class SharedSiteLimit:
    """The slot every request of one site's crawl takes in the limits all runs share.

    One Prefect client serves the whole crawl (its threads share it). Slots are taken with
    the client's own calls rather than ``prefect.concurrency.sync``'s helpers, which open a
    client, emit events and start a lease-renewal thread for every call: about 100 ms per
    request, more than the whole interval of a fast site. The concurrency slot is a lease that
    outlives the longest request by a minute, so a run killed mid-request frees it by itself.
    """

    def __init__(self, site: str, politeness: Politeness, note: Callable[[str], None]) -> None:
        from prefect.client.orchestration import get_client

        self.site = site
        self.politeness = politeness
        self.note = note
        self.waited_seconds = 0.0
        self._last_report = -math.inf
        self._lock = threading.Lock()
        self._rate, self._concurrency = limit_names(site)
        self._lease_seconds = 4 * politeness.timeout_seconds + 60
        self._client = get_client(sync_client=True)

    def __enter__(self) -> SharedSiteLimit:
        self._client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.__exit__(None, None, None)

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        """Hold a slot of the site's shared limits for one request to ``url``."""
        started = time.monotonic()
        deadline = started + self.politeness.max_shared_wait_seconds
        client = self._client
        self._take(
            url, deadline, lambda: client.increment_concurrency_slots([self._rate], 1, "rate_limit")
        )
        granted = self._take(
            url,
            deadline,
            lambda: client.increment_concurrency_slots_with_lease(
                [self._concurrency], 1, "concurrency", self._lease_seconds
            ),
        )
        self._waited(time.monotonic() - started)
        try:
            yield
        finally:
            lease = granted.json().get("lease_id")
            with suppress(httpx.HTTPError):  # unreleased, the lease expires by itself
                self._client.release_concurrency_slots_with_lease(lease)

    def _take(self, url: str, deadline: float, ask: Callable[[], httpx.Response]) -> httpx.Response:
        """Ask until granted, sleeping the Retry-After the server sends with each refusal.

        The server grants a slot of a limit that does not exist (deleted in the UI during
        the crawl) without a word: the limits are then made again, once, and asked anew.
        """
        remade = False
        while True:
            try:
                granted = ask()
            except httpx.HTTPStatusError as exc:
                if exc.response.status_code != 423:
                    raise FetchError(
                        f"{url}: {self.site}'s shared limits refused the request "
                        f"(HTTP {exc.response.status_code}: {exc.response.text[:200]})"
                    ) from exc
                pause = float(exc.response.headers.get("Retry-After") or 0.1)
            else:
                body = granted.json()
                limits = body.get("limits", []) if isinstance(body, dict) else body
                if limits:
                    return granted
                if remade:
                    raise FetchError(
                        f"{url}: {self.site}'s shared limits vanish from the Prefect server "
                        "as soon as they are made; the request is not sent"
                    )
                ensure_limits(self.site, self.politeness)
                remade, pause = True, 0.0
            if time.monotonic() + pause > deadline:
                raise FetchError(
                    f"{url}: waited more than {self.politeness.max_shared_wait_seconds:g} s for "
                    f"{self.site}'s shared limits (other runs crawling the site hold them; "
                    "politeness.max_shared_wait_seconds)"
                )
            time.sleep(min(pause, 5.0))

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
