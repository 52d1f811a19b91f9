"""Unit tests of the pure parts of infra/: Slurm output parsers, slurm.conf rendering,
profiles and their overrides, and the task-runner factory's Slurm settings."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import pytest
from dask_jobqueue import SLURMCluster

from infra.joblogs import JobLogForwarder, choose_lines
from infra.localslurm import LocalClusterSpec, munge_socket_for, render_slurm_conf
from infra.profiles import ProfileError, SlurmProfile, load_profile, parse_walltime
from infra.runner import dask_task_runner, explain_missing_workers, lifetime_args, render_prologue
from infra.slurm import (
    SlurmCommandError,
    parse_scontrol_jobs,
    parse_sinfo_nodes,
    parse_squeue,
    run_slurm,
)
from tasks.storage import DataRoot

# Real output of `squeue --noheader -o '%i|%P|%T|%r|%N'` on the local cluster.
SQUEUE_OUTPUT = """\
4|closed|PENDING|PartitionDown|
2|dev|PENDING|Priority|
1|dev|RUNNING|None|n1
"""

# Real output of `sinfo -N --noheader -o '%N|%P|%T|%c|%m'`.
SINFO_OUTPUT = """\
n1|standard*|idle|2|4000
n1|dev|mixed|2|4000
n2|dev|down*|2|4000
"""

# Real output of `scontrol show job -o 86` (a finished job) and of a pending one, shortened.
SCONTROL_OUTPUT = """\
JobId=86 JobName=wrap UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901752 \
Nice=0 Account=(null) QOS=(null) JobState=COMPLETED Reason=None Dependency=(null) Requeue=1 \
Restarts=0 BatchFlag=1 Reboot=0 ExitCode=0:0 RunTime=00:00:01 TimeLimit=02:00:00 TimeMin=N/A \
SubmitTime=2026-11-21T18:57:31 EligibleTime=2026-11-21T18:57:31 \
AccrueTime=2026-11-21T18:57:31 StartTime=2026-11-21T18:57:31 EndTime=2026-11-21T18:57:32 \
Deadline=N/A SuspendTime=None SecsPreSuspend=0 LastSchedEval=2026-11-21T18:57:31 \
Scheduler=Main Partition=dev AllocNode:Sid=localhost:22522 ReqNodeList=(null) \
ExcNodeList=(null) NodeList=n1 BatchHost=n1 NumNodes=1 NumCPUs=1 NumTasks=1 CPUs/Task=1 \
WorkDir=/work/main StdErr=/dev/null StdIn=/dev/null StdOut=/dev/null Power=
JobId=87 JobName=auction-pipeline-worker JobState=PENDING Reason=Resources \
SubmitTime=2026-11-21T18:58:01 StartTime=Unknown EndTime=Unknown NodeList=(null)
"""


def test_parse_scontrol_jobs() -> None:
    assert parse_scontrol_jobs("No jobs in the system\n") == []  # `scontrol show job` of none
    done, pending = parse_scontrol_jobs(SCONTROL_OUTPUT)
    assert (done.job_id, done.name, done.state, done.nodes) == ("86", "wrap", "COMPLETED", "n1")
    assert done.submit == done.start == dt.datetime(2026, 11, 21, 18, 57, 31)
    assert done.end == dt.datetime(2026, 11, 21, 18, 57, 32)
    assert (pending.state, pending.start, pending.end) == ("PENDING", None, None)
    with pytest.raises(ValueError, match="no JobId"):
        parse_scontrol_jobs("slurm_load_jobs error: Invalid job id specified\n")


def test_parse_squeue() -> None:
    jobs = parse_squeue(SQUEUE_OUTPUT)
    assert [(j.job_id, j.partition, j.state, j.reason, j.nodes) for j in jobs] == [
        ("4", "closed", "PENDING", "PartitionDown", ""),
        ("2", "dev", "PENDING", "Priority", ""),
        ("1", "dev", "RUNNING", "None", "n1"),
    ]


def test_parse_squeue_rejects_other_formats() -> None:
    with pytest.raises(ValueError, match="unexpected squeue line"):
        parse_squeue("JOBID PARTITION NAME\n")


def test_parse_sinfo_strips_default_marker() -> None:
    rows = parse_sinfo_nodes(SINFO_OUTPUT)
    assert [(r.node, r.partition, r.state, r.cpus, r.memory_mb) for r in rows] == [
        ("n1", "standard", "idle", 2, 4000),
        ("n1", "dev", "mixed", 2, 4000),
        ("n2", "dev", "down*", 2, 4000),
    ]


def test_run_slurm_reports_command_code_and_stderr() -> None:
    with pytest.raises(SlurmCommandError) as info:
        run_slurm(["sh", "-c", "echo boom >&2; exit 3"])
    assert info.value.returncode == 3
    assert "boom" in str(info.value) and "exit code 3" in str(info.value)


def test_run_slurm_missing_program_names_the_fix() -> None:
    with pytest.raises(SlurmCommandError, match="cluster up"):
        run_slurm(["no-such-slurm-command"])


def test_render_slurm_conf(tmp_path: Path) -> None:
    spec = LocalClusterSpec(state_dir=tmp_path, nodes=3, hostname="box")
    conf = render_slurm_conf(spec)
    assert "NodeName=n[1-3] NodeHostname=box NodeAddr=127.0.0.1 Port=[17001-17003]" in conf
    assert f"AuthInfo=socket={munge_socket_for(tmp_path)}" in conf
    assert str(munge_socket_for(tmp_path)).startswith("/run/auction-pipeline/")
    assert "PartitionName=standard Nodes=n[1-3] Default=YES" in conf
    assert "PartitionName=dev Nodes=n[1-3] MaxTime=02:00:00" in conf
    assert "ProctrackType=proctrack/pgid" in conf  # scancel ends reparented processes too
    single = render_slurm_conf(LocalClusterSpec(state_dir=tmp_path, nodes=1, hostname="box"))
    assert "NodeName=n1 " in single and "Port=17001 " in single


def test_shipped_profiles_load() -> None:
    local, dev, prod = (load_profile(n, environ={}) for n in ("local", "dev", "prod"))
    assert local.kind == "local"
    assert isinstance(dev, SlurmProfile) and dev.partition == "dev"
    assert isinstance(prod, SlurmProfile) and prod.partition == "standard"
    assert dev.adapt.minimum_jobs >= 1 and prod.adapt.minimum_jobs >= 1


def test_environment_overrides_nested_keys() -> None:
    profile = load_profile(
        "prod",
        environ={
            "AUCTION_PIPELINE__PROD__ACCOUNT": "anthro",
            "AUCTION_PIPELINE__PROD__ADAPT__MAXIMUM_JOBS": "9",
            "AUCTION_PIPELINE__PROD__EXTRA_DIRECTIVES": "[--constraint=intel]",
            "AUCTION_PIPELINE__DEV__ACCOUNT": "not-for-prod",
        },
    )
    assert isinstance(profile, SlurmProfile)
    assert profile.account == "anthro"
    assert profile.adapt.maximum_jobs == 9
    assert profile.extra_directives == ["--constraint=intel"]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AUCTION_PIPELINE__DEV__WALLTIME": "3 hours"}, "walltime"),
        ({"AUCTION_PIPELINE__DEV__MEMORY": "lots"}, "memory"),
        ({"AUCTION_PIPELINE__DEV__ADAPT__MINIMUM_JOBS": "0"}, "minimum_jobs"),
        ({"AUCTION_PIPELINE__DEV__ADAPT__MAXIMUM_JOBS": "0"}, "maximum_jobs"),
        ({"AUCTION_PIPELINE__DEV__TYPO": "1"}, "typo .set by AUCTION_PIPELINE__DEV__TYPO."),
    ],
)
def test_bad_overrides_are_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        load_profile("dev", environ=environ)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile .gpu.*dev, local, prod"):
        load_profile("gpu", environ={})


def test_unreadable_and_malformed_profile_files(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="cannot read profiles file"):
        load_profile("dev", path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile("dev", path=bad)


@pytest.mark.parametrize(
    ("walltime", "seconds"), [("00:30:00", 1800), ("1-00:00:00", 86400), ("00:01:00", 60)]
)
def test_parse_walltime(walltime: str, seconds: int) -> None:
    assert parse_walltime(walltime) == seconds


def test_workers_retire_before_walltime() -> None:
    for walltime in (60, 1800, 4 * 3600, 48 * 3600):
        args = lifetime_args(walltime)
        lifetime = int(args[args.index("--lifetime") + 1].rstrip("s"))
        stagger = int(args[args.index("--lifetime-stagger") + 1].rstrip("s"))
        assert lifetime + stagger < walltime


def test_prologue_placeholders_are_filled_and_quoted_other_braces_kept() -> None:
    lines = render_prologue(
        [
            "source {venv}/bin/activate",
            "export X={prefect_api_url}",
            "export SCRATCH=${TMPDIR:-/tmp}/$USER",
            "awk '{print $1}' /proc/loadavg",
        ],
        "http://h:1/api?a=1&b=2",
    )
    assert "{venv}" not in lines[0] and lines[0].endswith("/bin/activate")
    assert lines[1] == "export X='http://h:1/api?a=1&b=2'"
    assert lines[2] == "export SCRATCH=${TMPDIR:-/tmp}/$USER"
    assert lines[3] == "awk '{print $1}' /proc/loadavg"


def test_override_below_a_scalar_is_named() -> None:
    with pytest.raises(ProfileError, match="AUCTION_PIPELINE__DEV__ADAPT__MAXIMUM_JOBS"):
        load_profile(
            "dev",
            environ={
                "AUCTION_PIPELINE__DEV__ADAPT": "5",
                "AUCTION_PIPELINE__DEV__ADAPT__MAXIMUM_JOBS": "4",
            },
        )


def test_slurm_runner_settings_and_job_script(tmp_path: Path) -> None:
    profile = load_profile(
        "dev",
        environ={
            "AUCTION_PIPELINE__DEV__QOS": "short",
            "AUCTION_PIPELINE__DEV__ACCOUNT": "anthro",
        },
    )
    tls = DataRoot(tmp_path).dask_tls()
    runner = dask_task_runner(
        profile,
        log_directory=tmp_path / "logs",
        tls_directory=tls,
        prefect_api_url="http://h:1/api",
    )
    assert runner.cluster_class == "dask_jobqueue.SLURMCluster"
    assert runner.adapt_kwargs["minimum_jobs"] >= 1
    kwargs = dict(runner.cluster_kwargs)
    # Render the real job script dask-jobqueue would submit (no job is submitted).
    with SLURMCluster(**kwargs) as cluster:
        script = cluster.job_script()
        assert cluster.scheduler_address.startswith("tls://")
    key = tls / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600 and "PRIVATE KEY" in key.read_text()
    assert tls.stat().st_mode & 0o777 == 0o700
    # Only the files' paths go into the job script, never the key itself.
    assert f"--tls-key {key}" in script
    assert "--tls-cert" in script and "--tls-key" in script and "--tls-ca-file" in script
    assert "PRIVATE KEY" not in script
    assert "#SBATCH -p dev" in script
    assert "#SBATCH -A anthro" in script
    assert "#SBATCH --qos=short" in script
    assert "#SBATCH -t 00:30:00" in script
    assert "export PREFECT_API_URL=http://h:1/api" in script
    assert "--lifetime" in script and "--lifetime-stagger" in script
    assert f"#SBATCH -e {tmp_path}/logs" in script


def test_slurm_runner_refuses_to_run_without_an_api() -> None:
    with pytest.raises(RuntimeError, match="PREFECT_API_URL"):
        dask_task_runner(
            load_profile("dev", environ={}),
            log_directory=Path("."),
            tls_directory=Path("."),
            prefect_api_url=None,
        )


def _dev() -> SlurmProfile:
    profile = load_profile("dev", environ={})
    assert isinstance(profile, SlurmProfile)
    return profile


def test_missing_workers_explained_for_running_jobs_that_never_connected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Canned squeue at the command boundary; the pending case runs for real in
    # test_slurm_pipeline.py against a DOWN partition.
    monkeypatch.setattr(
        "infra.runner.queued_jobs", lambda ids: parse_squeue("7|dev|RUNNING|None|n2\n")
    )
    message = explain_missing_workers(_dev(), ["7"], "tcp://10.0.0.1:8786", Path("/logs"))
    assert "partition 'dev'" in message
    assert "Jobs 7 are RUNNING on n2" in message
    assert "tcp://10.0.0.1:8786" in message and "interface" in message and "/logs" in message


def test_missing_workers_explained_for_jobs_that_already_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("infra.runner.queued_jobs", lambda ids: [])
    message = explain_missing_workers(_dev(), ["8", "9"], "tcp://h:1", Path("/logs"))
    assert "Jobs 8, 9 already left the queue" in message and "/logs" in message
    assert "No Dask worker" not in message


# A real worker job's stderr from the local cluster (shortened), then what Slurm adds when it
# kills a job at walltime, and a traceback from outside any task.
WORKER_STDERR = """\
2026-11-21 16:05:39,649 - distributed.worker - INFO -       Start worker at:      tcp://192.0.2.2:44983
16:05:42.317 | INFO    | Task run 'scrape-hotel-lumiere' - running in Slurm job 11 (dev) on node n3
2026-11-21 16:05:43,001 - distributed.worker.memory - WARNING - Unmanaged memory use is high.
slurmstepd-n3: error: *** JOB 11 ON n3 CANCELLED AT 2026-11-21T16:05:48 DUE TO TIME LIMIT ***
Traceback (most recent call last):
  File "x.py", line 1, in <module>
16:05:49.001 | ERROR   | Task run 'scrape-x' - Task run failed with exception
Traceback (most recent call last):
  File "task.py", line 3, in scrape
"""


def test_job_log_lines_worth_forwarding_are_chosen() -> None:
    lines = WORKER_STDERR.splitlines()
    chosen, carry = choose_lines(["echo from the prologue", *lines], logging.WARNING)
    assert chosen == [
        (logging.WARNING, "echo from the prologue"),  # before any record: forwarded
        (logging.WARNING, lines[2]),  # a Dask WARNING ...
        (logging.ERROR, lines[3]),  # Slurm's verdict
        (logging.WARNING, lines[4]),  # ... and the traceback that follows it
        (logging.WARNING, lines[5]),
    ]  # Dask INFO and Prefect's records (with their tracebacks) stay out: the UI has them
    assert carry is None
    assert choose_lines(["  more of the traceback", ""], None) == ([], None)


def test_job_log_forwarder_follows_files_and_waits_for_whole_lines(tmp_path: Path) -> None:
    err = tmp_path / "auction-pipeline-worker-7.err"
    emitted: list[tuple[int, str]] = []
    jobs = ["7"]
    forwarder = JobLogForwarder(
        tmp_path, "auction-pipeline-worker", lambda: jobs, lambda *a: emitted.append(a)
    )
    forwarder.poll()  # the job has not written yet: nothing, no error
    err.write_text(WORKER_STDERR + "half a li")
    jobs.clear()  # the job left the cluster; its file is still followed
    forwarder.poll()
    assert [message for _, message in emitted][:4] == [
        "[Slurm job 7] 2026-11-21 16:05:43,001 - distributed.worker.memory - WARNING - "
        "Unmanaged memory use is high.",
        "[Slurm job 7] slurmstepd-n3: error: *** JOB 11 ON n3 CANCELLED AT "
        "2026-11-21T16:05:48 DUE TO TIME LIMIT ***",
        "[Slurm job 7] Traceback (most recent call last):",
        '[Slurm job 7]   File "x.py", line 1, in <module>',
    ]
    assert len(emitted) == 4
    with open(err, "a") as stream:
        stream.write("ne\n2026-11-21 16:06:00,000 - distributed.nanny - ERROR - gone\n")
    forwarder.stop()  # the last read forwards the completed lines once
    assert emitted[4:] == [
        (logging.ERROR, "[Slurm job 7] 2026-11-21 16:06:00,000 - distributed.nanny - ERROR - gone")
    ]


def test_the_watchdog_finds_the_worker_jobs_of_its_run_by_comment() -> None:
    from infra.watchdog import job_comment, jobs_of_run

    listed = (
        f"41 {job_comment('run-a')}\n42 {job_comment('run-b')}\n43 (null)\n"
        f"44 {job_comment('run-a')}\n45 {job_comment('run-a')}-not\n"
    )
    assert jobs_of_run(listed, "run-a") == ["41", "44"]
    assert jobs_of_run("", "run-a") == []
