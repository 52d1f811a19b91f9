"""One run per data root and day: the lock, its holder's name, and two real runs at once.

The lock is a real POSIX lock taken by real processes; the filesystem checks read real
``/proc/self/mountinfo`` lines (copied from NFS, Lustre and BeeGFS clients) at the parser.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import CLI, REPO_ROOT, wait_for
from expected import all_lots

from sites.demo.catalogue import DemoConfig
from sites.demo.server import DemoSite
from tasks.runlock import (
    DataRootBusy,
    check_free,
    day_lock,
    lock_path,
    lock_scope_warning,
    mount_of,
    parse_mountinfo,
)
from tasks.store import database_url_for, table_rows

DAY = date(2026, 3, 14)

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
40 22 0:40 / /home rw,relatime shared:20 - nfs4 fs1:/home rw,vers=4.2,hard,proto=tcp
41 22 0:41 / /scratch rw,relatime shared:21 - lustre 10.0.0.1@o2ib:/scratch rw,flock,lazystatfs
42 22 0:42 / /projects rw,relatime shared:22 - lustre 10.0.0.1@o2ib:/proj rw,localflock
43 22 0:43 / /old rw,relatime shared:23 - nfs nas:/old rw,vers=3,nolock,proto=tcp
44 22 0:44 / /beegfs rw,relatime shared:24 - beegfs beegfs_nodev rw,cfgFile=/etc/beegfs/c.conf
45 40 0:45 / /home/with\\040space rw - nfs4 fs1:/x rw,vers=4.1,local_lock=none
"""


def test_mount_options_tell_which_filesystems_share_locks_across_nodes() -> None:
    mounts = parse_mountinfo(MOUNTINFO)

    def warning(path: str) -> str | None:
        return lock_scope_warning(mount_of(Path(path), mounts))

    assert warning("/home/alice/data") is None  # NFSv4: locks are part of the protocol
    assert warning("/scratch/group/data") is None  # Lustre with flock
    assert warning("/home/with space/data") is None  # local_lock=none is the default
    assert "Lustre without -o flock" in (warning("/projects/anthro") or "")
    assert "nolock" in (warning("/old/data") or "")
    assert "tuneUseGlobalFileLocks" in (warning("/beegfs/x") or "")
    assert warning("/var/tmp") is None  # ext4, local
    assert mount_of(Path("/home/with space/d"), mounts).point == "/home/with space"  # type: ignore[union-attr]


def _hold_in_other_process(root: Path, day: date) -> subprocess.Popen[str]:
    """A process that takes the day's lock, says so, and sleeps until killed."""
    code = (
        "import sys, time, datetime, pathlib\n"
        "from tasks.runlock import day_lock\n"
        "with day_lock(pathlib.Path(sys.argv[1]), datetime.date.fromisoformat(sys.argv[2]),"
        " 'test holder'):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(600)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(root), day.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_naming_the_first_and_a_killed_holder_frees_the_day(
    tmp_path: Path,
) -> None:
    holder = _hold_in_other_process(tmp_path, DAY)
    try:
        for attempt in (
            lambda: check_free(tmp_path, DAY),
            lambda: day_lock(tmp_path, DAY, "me").__enter__(),
        ):
            with pytest.raises(DataRootBusy) as caught:
                attempt()
            message = str(caught.value)
            assert f"pid {holder.pid}" in message and "test holder" in message
            assert str(lock_path(tmp_path, DAY)) in message
        # Another day of the same data root is free.
        with day_lock(tmp_path, date(2026, 3, 15), "other day"):
            pass
        # Re-entrant in one process: the command line and its flow both take it.
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    # The kernel released the dead holder's lock: no stale lock to clean up by hand.
    with day_lock(tmp_path, DAY, "after the kill"), day_lock(tmp_path, DAY, "again"):
        held = json.loads(lock_path(tmp_path, DAY).read_text())
        assert held["pid"] == os.getpid() and held["purpose"] == "again"


def test_two_runs_of_one_day_the_second_is_refused_and_the_first_loses_nothing(
    prefect_api_url: str, tmp_path: Path
) -> None:
    data_root = tmp_path / "data"
    config = DemoConfig(latency=0.05)
    with DemoSite(config) as site:
        env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": site.url}
        args = [CLI, "run", "--profile", "local", "--date", DAY.isoformat(), "--json"]
        first = subprocess.Popen(
            [*args, "--data-root", str(data_root)],
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            warc_dir = data_root / "warc" / DAY.isoformat()
            wait_for(
                lambda: warc_dir.is_dir() and any(warc_dir.glob(".*.partial")),
                120,
                "the first run crawling",
                interval=0.1,
            )
            second = subprocess.run(
                [*args, "--data-root", str(data_root)],
                env=env,
                cwd=REPO_ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            partials_after = sorted(p.name for p in warc_dir.glob(".*.partial"))
            out, err = first.communicate(timeout=300)
        finally:
            first.kill()
    assert second.returncode == 3, second.stderr[-2000:]
    # One line: refused at the lock, before it ran a flow or crawled (both log to stderr).
    # Not a time bound: under a loaded suite the second process's start alone took 37 s.
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert "is busy with 2026-03-14" in second.stderr and "daily-pipeline run" in second.stderr
    assert partials_after  # the second run deleted none of the first's in-flight files
    assert first.returncode == 0, err[-3000:]
    summary = json.loads(out)
    expected = all_lots(config, DAY)
    for name, row in summary["sites"].items():
        assert row["error"] is None
        assert row["lots"] == sum(1 for site, _ in expected if site == name), name
    rows = table_rows(database_url_for(data_root), "lots")
    assert {(r["site"], r["lot_key"]) for r in rows} == expected
