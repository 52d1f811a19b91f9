"""How a Slurm job ended, judged from real ``scontrol`` / ``sacct`` records and the lines
slurmstepd wrote into the jobs' stderr on the local cluster (canned here: the parser is a
unit boundary; the fault-injection tests produce each end for real), and the flow-run job
script the Slurm worker renders (pure)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from infra.flowjob import FlowJobError, FlowJobSpec, job_name, render_flow_job_script
from infra.jobend import describe, judge
from infra.slurm import JobRecord, parse_sacct, parse_scontrol_jobs

# `scontrol show job -o` of real jobs on the local cluster, shortened to the fields read.
OOM = (
    "JobId=311 JobName=wrap UserId=root(0) JobState=FAILED Reason=JobLaunchFailure "
    "ExitCode=0:9 StartTime=2026-11-21T22:00:53 EndTime=2026-11-21T22:00:54 NodeList=n1 "
    "StdErr=/tmp/exp/oom-311.err"
)
OOM_STDERR = [
    "slurmstepd-n1: error: StepId=311.batch exceeded memory limit (537157632 > 104857600), "
    "being killed",
    "slurmstepd-n1: error: Exceeded job memory limit",
    "slurmstepd-n1: error: *** JOB 311 ON n1 CANCELLED AT 2026-11-21T22:00:54 ***",
]
CANCELLED = "JobId=313 JobName=wrap JobState=CANCELLED Reason=None ExitCode=0:15 NodeList=n1"
CANCELLED_STDERR = ["slurmstepd-n1: error: *** JOB 313 ON n1 CANCELLED AT 2026-11-21T22:01:58 ***"]
FAILED = "JobId=314 JobName=wrap JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 NodeList=n3"
TIMEOUT = "JobId=316 JobName=wrap JobState=TIMEOUT Reason=TimeLimit ExitCode=0:0 NodeList=n1"
TIMEOUT_STDERR = [
    "slurmstepd-n1: error: *** JOB 316 ON n1 CANCELLED AT 2026-11-21T22:03:31 DUE TO TIME LIMIT ***"
]


def _record(line: str) -> JobRecord:
    (record,) = parse_scontrol_jobs(line)
    return record


def test_a_memory_kill_is_named_out_of_memory_although_slurm_says_failed() -> None:
    record = _record(OOM)
    assert (record.state, record.exit_code, record.stderr) == (
        "FAILED",
        "0:9",
        "/tmp/exp/oom-311.err",
    )
    end = judge("311", record, OOM_STDERR)
    assert end.state == "OUT_OF_MEMORY" and end.abnormal and end.node == "n1"
    text = describe(end)
    assert text.startswith("Slurm job 311 on n1 ran out of memory (OUT_OF_MEMORY")
    assert "exceeded memory limit (537157632 > 104857600)" in text


def test_walltime_cancel_exit_code_and_success() -> None:
    timeout = judge("316", _record(TIMEOUT), TIMEOUT_STDERR)
    assert timeout.state == "TIMEOUT" and "reached its walltime" in describe(timeout)
    # A job still listed as RUNNING whose stderr already carries the time-limit verdict.
    running = _record(TIMEOUT.replace("JobState=TIMEOUT", "JobState=RUNNING"))
    assert judge("316", running, TIMEOUT_STDERR).state == "TIMEOUT"

    cancelled = judge("313", _record(CANCELLED), CANCELLED_STDERR)
    assert (cancelled.state, cancelled.signal, cancelled.cancelled_by) == ("CANCELLED", 15, None)
    assert describe(cancelled).startswith("Slurm job 313 on n1 was cancelled (CANCELLED)")

    failed = judge("314", _record(FAILED), ["boom"])
    assert (failed.state, failed.exit_code) == ("FAILED", 3)
    assert describe(failed) == (
        "Slurm job 314 on n3 failed with exit code 3 (FAILED); last lines of its stderr: boom"
    )
    done = judge("9", _record(FAILED.replace("FAILED", "COMPLETED").replace("3:0", "0:0")), [])
    assert done.state == "COMPLETED" and not done.abnormal


def test_node_failure_preemption_and_a_forgotten_job() -> None:
    lost = (
        "slurmstepd-n2: error: *** JOB 7 ON n2 CANCELLED AT 2026-01-01T00:00:00 "
        "DUE TO NODE FAILURE ***"
    )
    assert judge("7", None, [lost]).state == "NODE_FAIL"
    assert "lost its node (NODE_FAIL)" in describe(judge("7", None, [lost]))
    preempt = lost.replace("NODE FAILURE", "PREEMPTION")
    assert judge("7", None, [preempt]).state == "PREEMPTED"
    # A worker job dask-jobqueue cancelled after losing its worker, on a node Slurm now
    # reports down: the node failed. On a healthy node it stays CANCELLED.
    on_dead_node = _record(CANCELLED.replace("JobId=313", "JobId=2"))
    assert judge("2", on_dead_node, [], "down*").state == "NODE_FAIL"
    assert judge("2", on_dead_node, [], "idle*").state == "NODE_FAIL"
    assert judge("2", on_dead_node, [], "idle").state == "CANCELLED"
    timeout = _record(TIMEOUT)
    assert judge("316", timeout, TIMEOUT_STDERR, "down*").state == "TIMEOUT"
    gone = judge("8", None, [])
    assert gone.state == "UNKNOWN" and "no longer knows" in describe(gone)


def test_parse_sacct_keeps_who_cancelled() -> None:
    # `sacct -X -n -P -o JobID,JobName,State,ExitCode,NodeList,Submit,Start,End` (slurmdbd).
    text = (
        "40|auction-pipeline-worker|CANCELLED by 1000|0:0|n2|2026-11-21T10:00:00|"
        "2026-11-21T10:00:01|2026-11-21T10:05:00\n"
        "41|flow|NODE_FAIL|0:0|n3|2026-11-21T10:00:00|2026-11-21T10:00:01|2026-11-21T10:02:00\n"
    )
    cancelled, node_fail = parse_sacct(text)
    assert (cancelled.state, cancelled.reason) == ("CANCELLED", "by 1000")
    end = judge("40", cancelled, [])
    assert end.cancelled_by == "1000"
    assert describe(end) == "Slurm job 40 on n2 was cancelled by user 1000 (CANCELLED)"
    assert judge("41", node_fail, []).state == "NODE_FAIL"


def test_flow_job_script_carries_resources_not_settings() -> None:
    spec = FlowJobSpec(
        partition="dev",
        time="00:45:00",
        memory="2G",
        cpus=2,
        account="anthro",
        qos="short",
        extra_directives=("--constraint=intel",),
        prologue=("module load python/3.11",),
        log_directory=Path("/data/logs/slurm"),
    )
    script = render_flow_job_script(spec, "abc-123", ["/venv/bin/python", "-m", "prefect.engine"])
    lines = script.splitlines()
    for directive in (
        "--job-name=prefect-flow-abc-123", "--partition=dev", "--time=00:45:00", "--mem=2G",
        "--cpus-per-task=2", "--account=anthro", "--qos=short", "--constraint=intel",
        "--no-requeue", "--error=/data/logs/slurm/prefect-flow-abc-123-%j.err",
    ):  # fmt: skip
        assert f"#SBATCH {directive}" in lines
    assert lines.index("module load python/3.11") < lines.index(
        "exec /venv/bin/python -m prefect.engine"
    )
    assert "PREFECT" not in script.replace("prefect.engine", "").replace("Prefect flow run", "")
    assert job_name("abc-123") == "prefect-flow-abc-123"


def test_flow_job_variables_slurm_would_refuse_are_named() -> None:
    good = FlowJobSpec(partition="dev", time="01:00:00", memory="4G")
    for change, variable in (
        ({"partition": "dev standard"}, "partition"),
        ({"time": "one hour"}, "time"),
        ({"memory": "4 GB"}, "memory"),
        ({"cpus": 0}, "cpus"),
        ({"extra_directives": ("constraint=x",)}, "extra_directives"),
    ):
        with pytest.raises(FlowJobError, match=f"job variable '{variable}'"):
            render_flow_job_script(replace(good, **change), "r", ["python"])  # type: ignore[arg-type]


def test_a_flow_run_job_takes_what_its_job_variables_leave_unset_from_its_profile() -> None:
    from infra.runner import VENV
    from infra.slurm_worker import SlurmJobConfiguration

    config = SlurmJobConfiguration(time="01:00:00", memory="2G")
    spec = config.spec({"profile": "prod", "data_root": "/shared/prod"})
    assert (spec.partition, spec.account, spec.qos) == ("standard", None, None)
    assert spec.log_directory == Path("/shared/prod/logs/slurm")
    # The profile's prologue without the line that would write the API URL into the script.
    assert spec.prologue == ("# module load python/3.11", f"source {VENV}/bin/activate")
    chosen = SlurmJobConfiguration(partition="bigmem", qos="long", prologue=["module load x"])
    picked = chosen.spec({"profile": "dev"})
    assert (picked.partition, picked.qos, picked.prologue) == ("bigmem", "long", ("module load x",))
    with pytest.raises(FlowJobError, match="its profile 'local' is not a Slurm profile"):
        SlurmJobConfiguration().spec({"profile": "local"})


def test_an_administrators_template_wraps_the_engine_and_keeps_the_shells_braces() -> None:
    template = (
        "#!/bin/bash\n{directives}\n{prologue}\nmodule load apptainer\n"
        'echo "run {flow_run_id} on ${HOSTNAME}" >&2\n'
        "exec apptainer exec /shared/images/pipeline.sif {command}\n"
    )
    spec = FlowJobSpec(
        partition="dev", time="01:00:00", memory="2G", prologue=("echo '{command}'",)
    )
    script = render_flow_job_script(spec, "r-1", ["python", "-m", "prefect.engine"], template)
    lines = script.splitlines()
    assert lines[0] == "#!/bin/bash" and "#SBATCH --partition=dev" in lines
    assert "echo '{command}'" in lines  # a value is not filled again
    assert 'echo "run r-1 on ${HOSTNAME}" >&2' in lines
    assert lines[-1] == "exec apptainer exec /shared/images/pipeline.sif python -m prefect.engine"
    assert lines.index("module load apptainer") < len(lines) - 1


def test_a_template_the_worker_could_not_follow_is_refused() -> None:
    spec = FlowJobSpec(partition="dev", time="01:00:00", memory="2G")
    for template, expected in (
        ("{directives}\nexec {command}\n", "must start with a '#!' line"),
        ("#!/bin/bash\n{directives}\nexec python\n", "lacks {command}"),
        ("#!/bin/bash\nexec {command}\n", "lacks {directives}"),
    ):
        with pytest.raises(FlowJobError, match=re.escape(expected)):
            render_flow_job_script(spec, "r", ["python"], template)
