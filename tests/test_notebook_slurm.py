"""The ad hoc notebook, executed headless top to bottom against the local Slurm cluster:
the pipeline for one site and date on profile dev, the table, and the interactive Dask
client on SLURMCluster, which must leave no worker job in the queue."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from infra.slurm import run_slurm
from sites.demo.catalogue import Catalogue
from sites.demo.server import DemoSite

pytestmark = [pytest.mark.slurm, pytest.mark.prefect_server]

DAY = date(2026, 3, 14)
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "adhoc_run.ipynb"


def _text(cell: nbformat.NotebookNode) -> str:
    """Everything a cell printed or displayed, as text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def test_notebook_runs_top_to_bottom_on_the_dev_partition(
    slurm_conf: Path,
    prefect_api_url: str,
    demo_site: DemoSite,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data_root = tmp_path / "notebook-data"
    for name, value in {
        "PREFECT_API_URL": prefect_api_url,
        "DEMO_SITE_URL": demo_site.url,
        "SLURM_CONF": str(slurm_conf),
        "AUCTION_PIPELINE_NOTEBOOK_SITE": "harrow-finch",
        "AUCTION_PIPELINE_NOTEBOOK_DATE": "2026-03-14",
        "AUCTION_PIPELINE_NOTEBOOK_PROFILE": "dev",
        "AUCTION_PIPELINE_NOTEBOOK_DATA_ROOT": str(data_root),
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

    outputs = [_text(cell) for cell in notebook.cells if cell.cell_type == "code"]
    parameters, run, table, interactive, queue = outputs
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

    # 3. The interactive client re-read every stored lot page on Slurm workers, with a
    # progress bar, and its worker jobs left the queue when the block ended.
    assert "100% Completed" in interactive
    assert f"{expected} stored lot pages re-read on the cluster; title found on {expected}" in (
        interactive
    )
    assert "none left in the queue" in interactive
    assert "none of your auction-pipeline worker jobs is in the queue" in queue
    left = run_slurm(["squeue", "--noheader", "--name", "auction-pipeline-worker"]).stdout
    assert left.strip() == ""
