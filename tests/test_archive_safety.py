"""Backups and bags under file damage: nothing the product ever completed is lost.

Real runs of the command line (local profile, the demo site, a real Prefect server), then
the damage a careless user or a failing disk does — a WARC deleted from ``warc/``, a byte
flipped in it or in the bag's copy, a rescrape — each followed by ``reprocess`` and ``archive
verify``, asserting on the files left behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import Cli

from sites.demo.catalogue import HOUSES
from sites.demo.server import DemoSite
from sites.loader import SITES_DIR

DAY = "2026-03-14"
pytestmark = pytest.mark.timeout(900)
Runner = Callable[..., subprocess.CompletedProcess[str]]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _printable(text: str) -> bool:
    return all(ch.isprintable() or ch in "\n\t" for ch in text)


@pytest.fixture
def day_run(cli: Cli, prefect_api_url: str, tmp_path: Path) -> Iterator[tuple[Path, Runner]]:
    """A data root with one collected demo day, and a function running the CLI on it.

    The three houses only (a sites directory of their files): a dozen runs of the day check
    what happens to backups and bags, which the marketplaces' files would only make slower.
    """
    data_root = tmp_path / "data"
    sites = tmp_path / "sites"
    sites.mkdir()
    for house in HOUSES:
        shutil.copy(SITES_DIR / f"{house}.yaml", sites)
    with DemoSite() as site:
        env = {
            "PREFECT_API_URL": prefect_api_url,
            "DEMO_SITE_URL": site.url,
            "AUCTION_PIPELINE_SITES_DIR": str(sites),
        }

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return cli(*args, "--data-root", str(data_root), env=env, timeout=300)

        first = run("run", "--profile", "local", "--date", DAY, "--json")
        assert first.returncode == 0, first.stderr[-3000:]
        yield data_root, run


def test_bags_own_their_copies_and_reprocess_never_drops_the_last_one(
    day_run: tuple[Path, Runner],
) -> None:
    data_root, run = day_run
    warc_dir = data_root / "warc" / DAY
    bag = data_root / "archive" / DAY
    harrow = warc_dir / f"harrow-finch-{DAY}.warc.gz"
    bag_harrow = bag / "data" / "warc" / harrow.name
    # The bag's WARC is a copy, not the same inode as the working file.
    assert harrow.stat().st_ino != bag_harrow.stat().st_ino
    assert _digest(harrow) == _digest(bag_harrow)
    assert (warc_dir / f"{harrow.name}.sha256").read_text().startswith(_digest(harrow))
    manifest = (bag / "manifest-sha256.txt").read_bytes()

    # 1. The working WARC is deleted: reprocess refuses to rebuild the bag without it.
    harrow.unlink()
    refused = run("reprocess", "--date", DAY, "--json")
    assert refused.returncode == 1, refused.stderr[-3000:]
    summary = json.loads(refused.stdout)
    message = summary["message"]
    assert "ArchiveRefused" in message and harrow.name in message
    assert f"cp {bag_harrow} {warc_dir}/" in message and "--drop-site harrow-finch" in message
    assert (bag / "manifest-sha256.txt").read_bytes() == manifest  # the bag as it was
    assert bag_harrow.is_file()
    verify = run("archive", "verify", DAY)
    assert verify.returncode == 1
    assert f"{harrow} is missing; the bag holds a copy" in verify.stdout

    # ... restored as the message says, the day reprocesses and verifies.
    shutil.copy2(bag_harrow, harrow)
    again = run("reprocess", "--date", DAY, "--json")
    assert again.returncode == 0, again.stderr[-3000:]
    assert run("archive", "verify", DAY).returncode == 0

    # 2. A byte flips in a working WARC: verify names it, the site's processing refuses to
    # read it, the bag keeps its good copy, and no raw bytes reach the terminal.
    lumiere = warc_dir / f"hotel-lumiere-{DAY}.warc.gz"
    bag_lumiere = bag / "data" / "warc" / lumiere.name
    good = _digest(bag_lumiere)
    _flip_a_byte(lumiere)
    verify = run("archive", "verify", DAY)
    assert verify.returncode == 1 and f"{lumiere} is damaged" in verify.stdout
    damaged = run("reprocess", "--date", DAY, "--json")
    assert damaged.returncode == 1
    summary = json.loads(damaged.stdout)
    assert "BackupDamaged" in summary["sites"]["hotel-lumiere"]["error"]
    assert f"cp {bag_lumiere} {lumiere}" in summary["message"]
    assert summary["sites"]["harrow-finch"]["error"] is None  # the others still load
    assert _printable(damaged.stdout + damaged.stderr)
    # A plain re-run of the day does not take the damaged file for the day's pages either.
    rerun = run("run", "--profile", "local", "--date", DAY, "--json")
    assert rerun.returncode == 1
    rerun_sites = json.loads(rerun.stdout)["sites"]
    assert "BackupDamaged" in rerun_sites["hotel-lumiere"]["error"]
    assert rerun_sites["harrow-finch"]["error"] is None
    assert rerun_sites["harrow-finch"]["reused_backup"] is True
    assert _digest(bag_lumiere) == good
    shutil.copy2(bag_lumiere, lumiere)
    assert run("reprocess", "--date", DAY).returncode == 0

    # 3. A byte flips in the bag's copy: verify says INVALID; the working copy is intact,
    # so reprocess rebuilds a valid bag from it.
    _flip_a_byte(bag_lumiere)
    verify = run("archive", "verify", DAY)
    assert verify.returncode == 1 and "INVALID" in verify.stdout and lumiere.name in verify.stdout
    assert run("reprocess", "--date", DAY).returncode == 0
    assert _digest(bag_lumiere) == good
    assert run("archive", "verify", DAY).returncode == 0

    # 4. A site dropped on purpose: the bag is rebuilt without it, and the previous bag,
    # which holds the last copy of its WARC, is kept.
    brooklyn = warc_dir / f"brooklyn-gallery-{DAY}.warc.gz"
    brooklyn_digest = _digest(brooklyn)
    brooklyn.unlink()
    dropped = run("reprocess", "--date", DAY, "--drop-site", "brooklyn-gallery", "--json")
    assert dropped.returncode == 0, dropped.stderr[-3000:]
    kept = Path(json.loads(dropped.stdout)["superseded_archive"])
    assert _digest(kept / "data" / "warc" / brooklyn.name) == brooklyn_digest
    assert not (bag / "data" / "warc" / brooklyn.name).exists()

    # 5. A rescrape replaces the working WARCs: the bag holding the earlier ones is kept.
    before = {p.name: _digest(p) for p in (bag / "data" / "warc").glob("*.warc.gz")}
    rescraped = run("run", "--profile", "local", "--date", DAY, "--rescrape", "--json")
    assert rescraped.returncode == 0, rescraped.stderr[-3000:]
    kept = Path(json.loads(rescraped.stdout)["superseded_archive"])
    assert {p.name: _digest(p) for p in (kept / "data" / "warc").glob("*.warc.gz")} == before

    # Every WARC that was ever complete still exists somewhere under the data root.
    everywhere = {_digest(p) for p in data_root.rglob("*.warc.gz")}
    assert (
        brooklyn_digest in everywhere and good in everywhere and set(before.values()) <= everywhere
    )
    assert run("archive", "verify", DAY).returncode == 0
