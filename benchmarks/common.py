"""What every benchmark shares: timing by median of repetitions, the figure record, the
machine description, and the results files (JSON and ``RESULTS.md``), written atomically.

Every figure is a ratio of two things measured side by side in the same run, so that the
noise of a shared machine cancels out; absolute times are reported beside it for context.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from infra.atomic import write_atomic

PACKAGES = ("prefect", "prefect-dask", "dask", "distributed", "dask-jobqueue", "parsel")


@dataclass(frozen=True)
class Figure:
    """One measured figure: ``value`` of ``case`` against ``baseline`` (their ratio)."""

    benchmark: str
    case: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    target: str = ""
    met: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        """``value`` over ``baseline_value``: the figure to compare across runs."""
        return self.value / self.baseline_value if self.baseline_value else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """The figure with its ratio, for results.json."""
        return {**asdict(self), "ratio": self.ratio}


def noop(item: int) -> int:
    """The trivial item of the overhead benchmarks: all that is measured is the cost of
    getting it run (module-level, so every tool ships it by reference)."""
    return item


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls."""
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine(slurm_version: str = "") -> dict[str, Any]:
    """Where and with what the figures were measured."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "slurm": slurm_version,
        "versions": versions,
    }


def render_markdown(
    figures: Sequence[Figure], about: dict[str, Any], command: str, analysis: str = ""
) -> str:
    """The results as a Markdown page: machine, one table row per figure, then ``analysis``
    (the hand-written account of missed targets)."""
    versions = ", ".join(f"{k} {v}" for k, v in about["versions"].items())
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{command}` on {about['date']}: {about['platform']}, Python "
        f"{about['python']}, {about['cpus']} CPUs, {about['memory_gib']} GiB, "
        f"{about['slurm'] or 'no Slurm'}; {versions}.",
        "",
        "Each ratio compares two things measured side by side in the same run (median of the "
        "repetitions); absolute values depend on the machine's load, ratios much less so.",
        "",
        "| benchmark | case | value | baseline | ratio | target | met | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(
            f"| {f.benchmark} | {f.case} | {f.value:.4g} {f.unit} | {f.baseline}: "
            f"{f.baseline_value:.4g} {f.unit} | {f.ratio:.3g} | {f.target} | {met} | {f.note} |"
        )
    if analysis:
        lines += ["", analysis.strip()]
    return "\n".join(lines) + "\n"


def write_results(
    figures: Sequence[Figure],
    about: dict[str, Any],
    out_dir: Path,
    command: str,
    analysis: str = "",
) -> tuple[Path, Path]:
    """Write ``results.json`` and ``RESULTS.md`` under ``out_dir`` (each atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"machine": about, "command": command, "figures": [f.as_dict() for f in figures]}
    json_path, md_path = out_dir / "results.json", out_dir / "RESULTS.md"
    write_atomic(json_path, (json.dumps(data, indent=2) + "\n").encode())
    write_atomic(md_path, render_markdown(figures, about, command, analysis).encode())
    return json_path, md_path
