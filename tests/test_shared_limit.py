"""Politeness across runs: runs that crawl one site at the same time share its rate through
the Prefect server (tasks/sharedlimit.py), judged by the site's own log.

The end-to-end test starts two `auction-pipeline run`s of one house at once, reporting to
one real Prefect server, and reads the demo site's request log: in every window the two
together stay within the site's `requests_per_second` plus the limiter's burst. Without the
shared limit each run would crawl at the full rate and the window counts double.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import CLI, REPO_ROOT
from prefect.settings import PREFECT_API_URL, temporary_settings

from sites.demo.server import DemoSite
from sites.loader import SITES_DIR, Politeness
from tasks.sharedlimit import SharedSiteLimit, burst, ensure_rate_limit, rate_limit_name

pytestmark = pytest.mark.prefect_server

RATE = 8.0  # the test site's requests_per_second: slow enough to measure, fast enough to run


def _most_in_any_window(times: list[float], window: float) -> int:
    """The largest number of ``times`` within any span of ``window`` seconds."""
    times = sorted(times)
    most, first = 0, 0
    for last, at in enumerate(times):
        while at - times[first] > window:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_window_counting() -> None:
    assert _most_in_any_window([0, 0.5, 1.0, 1.4, 3.0], 1.0) == 3
    assert _most_in_any_window([], 1.0) == 0


@pytest.fixture
def api(prefect_api_url: str) -> Iterator[str]:
    """This process's Prefect client reports to the session's server."""
    with temporary_settings({PREFECT_API_URL: prefect_api_url}):
        yield prefect_api_url


def test_the_limits_follow_the_site_file(api: str) -> None:
    prefect_api_url = api
    site = f"limits-{uuid.uuid4().hex[:8]}"
    ensure_rate_limit(site, Politeness(requests_per_second=0.5, concurrency=1))
    ensure_rate_limit(site, Politeness(requests_per_second=3.5, concurrency=2))  # the file changed
    with httpx.Client(base_url=prefect_api_url, timeout=30) as api:
        held = api.get(f"/v2/concurrency_limits/{rate_limit_name(site)}").json()
    assert (held["limit"], held["slot_decay_per_second"], held["active"]) == (4, 3.5, True)
    assert burst(Politeness(requests_per_second=0.5)) == 2


def test_two_crawls_share_one_rate_and_the_waiting_one_says_so(api: str) -> None:
    site = f"shared-{uuid.uuid4().hex[:8]}"
    politeness = Politeness(requests_per_second=5, concurrency=1)
    ensure_rate_limit(site, politeness)
    granted: list[float] = []
    notes: list[str] = []
    lock = threading.Lock()

    def crawl(shared: SharedSiteLimit) -> None:
        with shared:
            for i in range(20):
                with shared.slot(f"https://example.org/{i}"), lock:
                    granted.append(time.monotonic())

    # Made here, as the scrape task makes it: the crawl's threads share its client.
    limits = [SharedSiteLimit(site, politeness, notes.append) for _ in range(2)]
    threads = [threading.Thread(target=crawl, args=(shared,)) for shared in limits]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    took = time.monotonic() - started
    assert len(granted) == 40
    # 40 slots at 5 a second, the first `burst` at once: at least (40 - 5) / 5 = 7 s.
    assert took >= (40 - burst(politeness)) / 5 - 0.5, took
    assert _most_in_any_window(granted, 2.0) <= 5 * 2 + burst(politeness)
    assert any("another run is crawling it" in note for note in notes), notes


def test_a_server_that_cannot_be_asked_does_not_cost_the_page() -> None:
    """Down or overloaded, the server answers no "wait": the request goes on, said once."""
    notes: list[str] = []
    nowhere = "http://127.0.0.1:9/api"
    politeness = Politeness(requests_per_second=5)
    started = time.monotonic()
    with (
        temporary_settings({PREFECT_API_URL: nowhere}),
        SharedSiteLimit("down", politeness, notes.append) as shared,
    ):
        for i in range(3):
            with shared.slot(f"https://example.org/{i}"):
                pass
    # Not asked again for a minute after the first failure: one failure's wait in all.
    assert time.monotonic() - started < 30
    assert len(notes) == 1 and "could not be asked" in notes[0], notes
    assert "paced by this run alone for a minute" in notes[0]


def test_a_limit_deleted_during_a_crawl_is_made_again(api: str) -> None:
    """The server grants a slot of a missing limit silently; the crawl must not run free."""
    site = f"deleted-{uuid.uuid4().hex[:8]}"
    politeness = Politeness(requests_per_second=2, concurrency=1)
    ensure_rate_limit(site, politeness)
    rate = rate_limit_name(site)
    with SharedSiteLimit(site, politeness, lambda note: None) as shared:
        with shared.slot("https://example.org/1"):
            pass
        assert httpx.delete(f"{api}/v2/concurrency_limits/{rate}", timeout=30).status_code == 204
        with shared.slot("https://example.org/2"):
            pass
    held = httpx.get(f"{api}/v2/concurrency_limits/{rate}", timeout=30).json()
    assert (held["limit"], held["slot_decay_per_second"], held["active_slots"]) == (2, 2.0, 1)


def _site_files(tmp_path: Path) -> Path:
    """The shipped harrow-finch site file, at RATE requests per second."""
    sites = tmp_path / "sites"
    sites.mkdir()
    text = (SITES_DIR / "harrow-finch.yaml").read_text()
    assert "  requests_per_second: 20 " in text
    (sites / "harrow-finch.yaml").write_text(
        text.replace("  requests_per_second: 20 ", f"  requests_per_second: {RATE:g} ")
    )
    return sites


def _start_run(data_root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`auction-pipeline run` of harrow-finch for 2026-03-14 into ``data_root``."""
    argv = [CLI, "run", "--profile", "local", "--date", "2026-03-14", "--site", "harrow-finch",
            "--data-root", str(data_root), "--json"]  # fmt: skip
    return subprocess.Popen(
        argv, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_runs_of_one_site_at_once_stay_within_its_rate_together(
    prefect_api_url: str, tmp_path: Path
) -> None:
    sites = _site_files(tmp_path)
    with DemoSite() as demo:
        env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": demo.url,
               "AUCTION_PIPELINE_SITES_DIR": str(sites)}  # fmt: skip
        runs = [_start_run(tmp_path / f"run{i}", env) for i in range(2)]
        outputs = [run.communicate(timeout=600) for run in runs]
        log = demo.request_log()
    for run, (_, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err[-3000:]
    summaries = [json.loads(out) for out, _ in outputs]
    requests = [s["sites"]["harrow-finch"]["requests"] for s in summaries]
    assert len(log) == sum(requests) > 100  # every request of both runs reached the site

    # Both crawled at the same time: the second robots.txt came early in the log.
    times = [at for at, _ in log]
    robots = [at for at, path in log if path.endswith("/robots.txt")]
    assert len(robots) == 2 and robots[1] - times[0] < (times[-1] - times[0]) / 3

    # The site saw the two together within its rate (plus the burst), in every window.
    limit = burst(Politeness(requests_per_second=RATE))
    for window in (2.0, 5.0):
        assert _most_in_any_window(times, window) <= RATE * window + limit, window
    assert (len(times) - limit) / RATE <= times[-1] - times[0]

    # And a run that waited for the other said so in its log.
    with httpx.Client(base_url=prefect_api_url, timeout=30) as api:
        ids = [s["flow_run_id"] for s in summaries]
        logs = api.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": ids}}}).json()
    waits = [m["message"] for m in logs if "shared rate limit" in m["message"]]
    assert waits and "another run is crawling it" in waits[0], waits
    assert f"harrow-finch's shared rate limit of {RATE:g} requests/s" in waits[0]
