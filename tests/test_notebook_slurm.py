"""The ad hoc notebook, executed headless top to bottom against the local Slurm cluster:
the pipeline for one site and date on profile dev, the table, one marketplace lot's bids
over its crawls and the lots and sales per seller (plotted with matplotlib), and the
interactive Dask client on SLURMCluster, which must leave no worker job in the queue.

The data root first gets four crawls of the demo eBay over three days, the demo's clock
moved between them (the follow tests' moments), through the pipeline's own steps in this
process: what the six-hourly marketplace deployment leaves in a data root."""

from __future__ import annotations

import base64
import sqlite3
from datetime import date, time
from pathlib import Path

import nbformat
import pytest
from crawling import crawl_here
from expected import FOLLOW_MOMENTS, follow_subjects, seller_counts
from nbclient import NotebookClient

from infra.slurm import run_slurm
from sites.demo.catalogue import Catalogue, DemoConfig
from sites.demo.marketplaces import MarketCatalogue
from sites.demo.server import DemoSite
from sites.loader import load_sites
from tasks.crawlid import CrawlId

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 3, 14)
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "adhoc_run.ipynb"
MARKET = "ebay"
PNG = b"\x89PNG\r\n\x1a\n"


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed, as text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def _images(cell: nbformat.NotebookNode) -> list[bytes]:
    """The PNG images a cell displayed (matplotlib's inline backend), decoded."""
    return [
        base64.b64decode(output["data"]["image/png"])
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


def _crawl_marketplace(root: Path, config: DemoConfig) -> None:
    """Four crawls of the demo eBay into ``root``, the demo's clock at each crawl's time."""
    with DemoSite(config) as demo, pytest.MonkeyPatch.context() as env:
        env.setenv("DEMO_SITE_URL", demo.url)
        sites = load_sites([MARKET])
        for moment in FOLLOW_MOMENTS:
            demo.reconfigure(market_time=moment)
            crawl_here(root, sites, CrawlId(moment.date(), time(moment.hour, moment.minute)))


def test_notebook_runs_top_to_bottom_on_the_dev_partition(
    slurm_conf: Path,
    prefect_api_url: str,
    demo_site: DemoSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_root = tmp_path / "notebook-data"
    market = DemoConfig(market_time=FOLLOW_MOMENTS[0])
    _crawl_marketplace(data_root, market)
    subject = follow_subjects(market)[MARKET]
    for name, value in {
        "PREFECT_API_URL": prefect_api_url,
        "DEMO_SITE_URL": demo_site.url,
        "SLURM_CONF": str(slurm_conf),
        "AUCTION_PIPELINE_NOTEBOOK_SITE": "harrow-finch",
        "AUCTION_PIPELINE_NOTEBOOK_DATE": "2026-03-14",
        "AUCTION_PIPELINE_NOTEBOOK_PROFILE": "dev",
        "AUCTION_PIPELINE_NOTEBOOK_DATA_ROOT": str(data_root),
        "AUCTION_PIPELINE_NOTEBOOK_MARKET_SITE": MARKET,
        "AUCTION_PIPELINE_NOTEBOOK_LOT": subject.lot_id,
        "AUCTION_PIPELINE__DEV__WORKER_START_TIMEOUT": "120",
    }.items():
        monkeypatch.setenv(name, value)  # the kernel inherits this process's environment

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",  # this venv's own kernel
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, with the cell and traceback, if a cell fails

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    outputs = [_text(cell) for cell in code]
    parameters, run, table, history, sellers, interactive, queue = outputs
    assert "profile dev" in parameters
    expected = len(Catalogue(demo_site.config).lots("harrow-finch", DAY))
    assert expected > 0

    # 1. The run completed with its tasks in Slurm jobs on partition dev.
    assert f"{expected} lots" in run and "(dev) on n" in run, run
    with sqlite3.connect(data_root / "auction.sqlite") as conn:
        stored = conn.execute("SELECT count(*) FROM lots WHERE site = 'harrow-finch'").fetchone()
    assert stored == (expected,)

    # 2. The table shows that many lots.
    assert f"{expected} lots of harrow-finch on 2026-03-14" in table

    # 3. The lot's bids over its four crawls, as the catalogue had them at each, plotted; and
    # the lots and sales per seller, as the catalogue has them now, charted.
    lot = MarketCatalogue(market).at(FOLLOW_MOMENTS[-1]).lot(MARKET, subject.lot_id)
    assert lot is not None and lot.status == "sold"
    assert (
        f"{MARKET} {lot.lot_id}: {lot.title}: 4 crawls, last status sold, "
        f"seller {lot.seller.seller_id}"
    ) in history
    for moment in FOLLOW_MOMENTS:
        then = MarketCatalogue(market).at(moment).lot(MARKET, subject.lot_id)
        assert then is not None and f"{then.price:.2f}" in history, (moment, history)
    with sqlite3.connect(data_root / "auction.sqlite") as conn:
        keys = {key for (key,) in conn.execute("SELECT lot_key FROM lots WHERE site = 'ebay'")}
    truth = seller_counts(market, MARKET, keys, FOLLOW_MOMENTS[-1])
    totals = {k: sum(row[k] for row in truth.values()) for k in ("lots", "sold", "open")}
    assert (
        f"{len(truth)} sellers of {MARKET}: {totals['lots']} lots, {totals['sold']} sold, "
        f"{totals['open']} open"
    ) in sellers
    for cell in (code[3], code[4]):
        (image,) = _images(cell)
        assert image.startswith(PNG) and len(image) > 10_000  # a drawn chart, not a blank

    # 4. The interactive client re-read every stored lot page on Slurm workers, with a
    # progress bar, and its worker jobs left the queue when the block ended.
    assert "100% Completed" in interactive
    assert f"{expected} stored lot pages re-read on the cluster; title found on {expected}" in (
        interactive
    )
    assert "none left in the queue" in interactive
    assert "none of your auction-pipeline worker jobs is in the queue" in queue
    left = run_slurm(["squeue", "--noheader", "--name", "auction-pipeline-worker"]).stdout
    assert left.strip() == ""
