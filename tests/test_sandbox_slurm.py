"""The sandbox stage (issue 15 part 6): ``reprocess --profile sandbox --backups-from DIR``
and ``run --backups-from DIR`` against another data root mounted read-only, on the local
Slurm cluster. The sandbox gets the same lots as the source without a request to any site,
its jobs run on partition dev, and nothing under the source changes (the kernel refuses any
write there; every file's bytes and times are compared too). A sandbox file that differs
from the source's is never overwritten, and a damaged source backup is refused.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import date
from pathlib import Path

import pytest
from conftest import Cli

from sites.demo.catalogue import HOUSES
from sites.demo.server import DemoSite
from tasks.checksums import damage
from tasks.sandbox import SandboxError, import_backups
from tasks.storage import DataRoot

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 3, 14)


def _state(root: Path) -> dict[str, tuple[str, int, int]]:
    """Every file and directory under ``root``: kind, size and modification time (ns)."""
    found = {}
    for path in sorted(root.rglob("*")):
        info = path.stat()
        found[str(path.relative_to(root))] = (
            "d" if path.is_dir() else "f",
            info.st_size,
            info.st_mtime_ns,
        )
    return found


def _lots(root: Path) -> set[tuple[str, str, str]]:
    with sqlite3.connect(root / "auction.sqlite") as conn:
        return set(conn.execute("SELECT site, lot_key, title FROM lots"))


@pytest.fixture(scope="module")
def dev_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, DemoSite]]:
    """A data root with a crawled day (as the dev deployment leaves it), mounted read-only
    at another path for the module; and the demo site it was crawled from."""
    source = tmp_path_factory.mktemp("dev-data")
    mounted = tmp_path_factory.mktemp("dev-data-ro")
    with DemoSite() as site:
        crawled = Cli()("run", "--profile", "local", "--date", DAY.isoformat(),
                        "--data-root", str(source), "--json",
                        env={"DEMO_SITE_URL": site.url}, timeout=600)  # fmt: skip
        assert crawled.returncode == 0, crawled.stderr[-3000:]
        subprocess.run(["mount", "--bind", source, mounted], check=True)
        try:
            subprocess.run(["mount", "-o", "remount,bind,ro", mounted], check=True)
            yield mounted, site
        finally:
            _unmount(mounted)


def _unmount(mounted: Path, patience: float = 60) -> None:
    """umount ``mounted``, retried while the processes that used it (a run's worker job)
    are still exiting; past ``patience`` seconds, detach it lazily and fail naming them."""
    deadline = time.monotonic() + patience
    while subprocess.run(["umount", mounted], capture_output=True, check=False).returncode:
        if time.monotonic() > deadline:
            holders = _processes_using(mounted)
            subprocess.run(["umount", "--lazy", mounted], check=False)
            raise AssertionError(f"{mounted} still busy after {patience:g} s: {holders}")
        time.sleep(1)


def _processes_using(path: Path) -> list[str]:
    """The processes whose working directory or an open file lies under ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        links = [proc / "cwd"]
        with suppress(OSError):  # gone meanwhile, or not ours to read
            links += list((proc / "fd").iterdir())
        targets = {_target(link) for link in links}
        if any(t == str(path) or t.startswith(f"{path}/") for t in targets):
            with suppress(OSError):
                found.append(f"{proc.name} {(proc / 'cmdline').read_bytes()[:200]!r}")
    return found


def _target(link: Path) -> str:
    """Where a /proc link points ('' if it went away meanwhile)."""
    try:
        return os.readlink(link)
    except OSError:
        return ""


def test_a_reprocess_in_a_sandbox_on_the_dev_partition_reads_the_source_and_writes_nothing_there(
    slurm_conf: Path, prefect_api_url: str, dev_data: tuple[Path, DemoSite], cli: Cli,
    tmp_path: Path,
) -> None:  # fmt: skip
    source, site = dev_data
    with pytest.raises(OSError, match="Read-only file system"):
        (source / "probe").write_text("x")  # the kernel refuses any write under the source
    before, sent = _state(source), site.request_count()
    sandbox = tmp_path / "sandbox"
    result = cli("reprocess", "--profile", "sandbox", "--date", DAY.isoformat(),
                 "--backups-from", str(source), "--data-root", str(sandbox), "--json",
                 env={"PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": site.url,
                      "AUCTION_PIPELINE__SANDBOX__WORKER_START_TIMEOUT": "120"},
                 timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["state"] == "COMPLETED"
    assert {job["partition"] for job in summary["slurm_jobs"]} == {"dev"}
    assert len({job["job_id"] for job in summary["slurm_jobs"]}) == 1  # the profile's one job
    copied = summary["backups_from"]["copied"]
    assert {f"{h}-{DAY}.warc.gz" for h in HOUSES} <= set(copied)
    assert {f"{h}-{DAY}.warc.gz.sha256" for h in HOUSES} <= set(copied)
    assert _lots(sandbox) == _lots(source) and _lots(sandbox)
    assert (sandbox / "archive" / DAY.isoformat() / "bagit.txt").is_file()
    assert site.request_count() == sent  # no request to any site
    assert _state(source) == before


def test_a_run_in_a_sandbox_fetches_nothing_the_source_has(
    prefect_api_url: str, dev_data: tuple[Path, DemoSite], cli: Cli, tmp_path: Path
) -> None:
    source, site = dev_data
    before, sent = _state(source), site.request_count()
    sandbox = tmp_path / "sandbox"
    args = ["run", "--profile", "local", "--date", DAY.isoformat(), "--backups-from",
            str(source), "--data-root", str(sandbox), "--json"]  # fmt: skip
    env = {"PREFECT_API_URL": prefect_api_url, "DEMO_SITE_URL": site.url}
    for again in (False, True):  # the second time, the copies are there already: kept
        result = cli(*args, env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads(result.stdout)
        assert all(summary["sites"][h]["reused_backup"] for h in HOUSES), summary["sites"]
        imported = summary["backups_from"]
        assert bool(imported["kept"]) == again and bool(imported["copied"]) != again
    assert site.request_count() == sent
    assert _lots(sandbox) == _lots(source)
    assert _state(source) == before

    refused = cli(*args, "--rescrape", env=env)
    assert refused.returncode == 2 and "give one of them" in refused.stderr


def test_a_sandbox_file_that_differs_is_never_overwritten_and_a_damaged_source_is_refused(
    dev_data: tuple[Path, DemoSite], tmp_path: Path
) -> None:
    source, _ = dev_data
    sandbox = DataRoot(tmp_path / "sandbox")
    import_backups(source, sandbox, DAY)
    mine = sandbox.warc_file(DAY, "harrow-finch")
    mine.write_bytes(mine.read_bytes() + b"my own edit")
    edited = _state(sandbox.path)
    with pytest.raises(SandboxError, match="exists and differs") as caught:
        import_backups(source, sandbox, DAY)
    assert str(mine) in str(caught.value) and "Nothing was imported" in str(caught.value)
    assert _state(sandbox.path) == edited  # nothing copied, the edit kept

    # A damaged backup in a (writable) source is refused before anything is copied.
    broken = tmp_path / "broken-source"
    import_backups(source, DataRoot(broken), DAY)
    warc = DataRoot(broken).warc_file(DAY, "hotel-lumiere")
    data = bytearray(warc.read_bytes())
    data[len(data) // 2] ^= 0xFF
    warc.write_bytes(bytes(data))
    assert damage(warc)
    fresh = DataRoot(tmp_path / "fresh")
    with pytest.raises(SandboxError, match="is damaged"):
        import_backups(broken, fresh, DAY)
    assert not fresh.path.exists()

    for wrong in (sandbox.path, sandbox.path / "warc"):
        with pytest.raises(SandboxError, match="own data root"):
            import_backups(wrong, sandbox, DAY)
    with pytest.raises(SandboxError, match="no page backup of 2026-03-15"):
        import_backups(source, DataRoot(tmp_path / "other"), date(2026, 3, 15))
