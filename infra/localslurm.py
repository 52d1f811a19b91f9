"""A real multi-node Slurm cluster on this machine, for trying the Slurm path and for the tests.

``auction-pipeline cluster up`` installs Debian's Slurm and munge if absent, writes its own
``slurm.conf`` and munge key under a state directory (default ``.slurm/`` in the repository),
and starts a private ``munged``, ``slurmctld`` and N ``slurmd -N nX`` virtual nodes with the
partitions ``standard`` and ``dev``. ``down`` stops exactly those daemons, by the pids they
wrote. Nothing outside the state directory is configured, so a system Slurm or munge on the
same machine is left alone; commands reach this cluster through ``SLURM_CONF``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra import localaccounting
from infra.apt import PackagesMissing, install_packages
from infra.atomic import write_atomic
from infra.commands import CommandError, find_program
from infra.locks import machine_lock
from infra.slurm import SQUEUE_FORMAT, SlurmCommandError, node_states, parse_squeue, run_slurm

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO_ROOT / ".slurm"
PARTITIONS = {"standard": "1-00:00:00", "dev": "02:00:00"}
PACKAGES = {
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "munged": "munge",
}


CLUSTER_NAME = "auctionlocal"
CONF_MARKER = "# Written by `auction-pipeline cluster up`; rewritten on every start."


class LocalClusterError(RuntimeError):
    """The local cluster cannot be started, stopped or inspected; the message says why."""


@dataclass(frozen=True)
class LocalClusterSpec:
    """Everything that goes into the local cluster's slurm.conf."""

    state_dir: Path
    nodes: int = 3
    cpus_per_node: int = 2
    memory_mb_per_node: int = 4000
    controller_port: int = 16817
    first_node_port: int = 17001
    hostname: str = ""
    accounting: localaccounting.AccountingSpec | None = None  # slurmdbd, or no accounting

    @property
    def munge_socket(self) -> Path:
        """munged's socket: under /run, because munged wants every directory above the socket
        searchable by all and socket paths are limited to 107 bytes; the state directory may
        be deep or private (pytest's temp dirs are 0700)."""
        return munge_socket_for(self.state_dir)

    @property
    def node_names(self) -> list[str]:
        """The virtual nodes' names, n1..nN."""
        return [f"n{i}" for i in range(1, self.nodes + 1)]


def is_local_cluster_conf(conf: Path) -> bool:
    """True when ``conf`` is a slurm.conf written by ``cluster up`` (all nodes on this host)."""
    try:
        with open(conf, encoding="utf-8") as handle:
            return handle.readline().rstrip("\n") == CONF_MARKER
    except OSError:
        return False


def munge_socket_for(state_dir: Path) -> Path:
    """The munge socket path of the local cluster kept in ``state_dir``."""
    tag = hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    return Path("/run/auction-pipeline") / tag / "munge.socket"


def render_slurm_conf(spec: LocalClusterSpec) -> str:
    """Render slurm.conf for the local cluster (pure).

    cgroups are unusable in containers and sandboxes, hence linuxproc/task none. ``LLN=YES``
    places each job on the least-loaded node, so a few small jobs spread over the virtual
    nodes as they would over a real cluster's nodes.
    """
    s = spec.state_dir.resolve()
    last_port = spec.first_node_port + spec.nodes - 1
    node_range = f"n[1-{spec.nodes}]" if spec.nodes > 1 else "n1"
    port_range = (
        f"[{spec.first_node_port}-{last_port}]" if spec.nodes > 1 else str(spec.first_node_port)
    )
    lines = [
        CONF_MARKER,
        f"ClusterName={CLUSTER_NAME}",
        f"SlurmctldHost={spec.hostname}(127.0.0.1)",
        f"SlurmctldPort={spec.controller_port}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={spec.munge_socket}",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"StateSaveLocation={s}/state",
        f"SlurmdSpoolDir={s}/spool/%n",
        f"SlurmctldPidFile={s}/run/slurmctld.pid",
        f"SlurmdPidFile={s}/run/slurmd-%n.pid",
        f"SlurmctldLogFile={s}/log/slurmctld.log",
        f"SlurmdLogFile={s}/log/slurmd-%n.log",
        # By process group: a Dask nanny whose batch script ended first is still the job's
        # (linuxproc follows parentage and loses it), so scancel ends every process of a job.
        "ProctrackType=proctrack/pgid",
        "TaskPlugin=task/none",
        "MpiDefault=none",
        "SchedulerType=sched/backfill",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "SlurmdParameters=config_overrides",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/linux",
        # Memory enforcement without cgroups: a step over its --mem is killed and the job
        # ends OUT_OF_MEMORY (sampled every second).
        "JobAcctGatherParams=OverMemoryKill",
        "JobAcctGatherFrequency=task=1",
        *(
            localaccounting.slurm_conf_lines(spec.accounting)
            if spec.accounting
            else ["AccountingStorageType=accounting_storage/none"]
        ),
        "JobCompType=jobcomp/none",
        "MinJobAge=300",
        "SlurmdTimeout=10",  # a lost node is DOWN (its jobs NODE_FAIL) after 10 s
        "InactiveLimit=0",
        "KillWait=5",
        f"NodeName={node_range} NodeHostname={spec.hostname} NodeAddr=127.0.0.1 "
        f"Port={port_range} CPUs={spec.cpus_per_node} "
        f"RealMemory={spec.memory_mb_per_node} State=UNKNOWN",
    ]
    for i, (name, max_time) in enumerate(PARTITIONS.items()):
        default = " Default=YES" if i == 0 else ""
        lines.append(
            f"PartitionName={name} Nodes={node_range}{default} MaxTime={max_time} State=UP LLN=YES"
        )
    return "\n".join(lines) + "\n"


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_block(start: int, count: int) -> int:
    """The first port >= start such that ``count`` consecutive ports are free."""
    port = start
    while port + count < 65000:
        if all(_port_is_free(p) for p in range(port, port + count)):
            return port
        port += count
    raise LocalClusterError(f"no {count} consecutive free TCP ports above {start}")


def ensure_packages(log: Callable[[str], None] = print) -> None:
    """Install Debian's slurmctld, slurmd, slurm-client and munge with apt if absent."""
    missing = sorted({pkg for prog, pkg in PACKAGES.items() if not find_program(prog)})
    if not missing:
        return
    try:
        install_packages(missing, why="the local Slurm cluster", error=SlurmCommandError, log=log)
    except PackagesMissing as exc:
        raise LocalClusterError(f"{exc}, then run `auction-pipeline cluster up` again") from None


def _pid_files(state_dir: Path) -> list[Path]:
    run = state_dir / "run"
    # slurmd first, munged last: daemons are stopped in this order.
    return [
        *sorted(run.glob("slurmd-*.pid")),
        run / "slurmctld.pid",
        run / "slurmdbd.pid",
        run / "mariadb.pid",
        run / "munged.pid",
    ]


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_our_daemon(pid: int, state_dir: Path) -> bool:
    """True when ``pid`` is alive and one of its arguments is a path inside our state directory.

    Guards against a stale pid file whose pid now belongs to another process (including a
    daemon of another local cluster whose state directory merely shares a prefix).
    """
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        # slurmdbd takes no path argument: it finds its config through SLURM_CONF.
        env = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    inside = str(state_dir.resolve()) + "/"
    conf = [item for item in env if item.startswith("SLURM_CONF=")]
    return any(inside in arg for arg in args) or (
        args[0].endswith("slurmdbd") and any(inside in item for item in conf)
    )


def running_cluster_conf(state_dir: Path) -> Path | None:
    """The slurm.conf of a local cluster in ``state_dir`` whose controller is running, if any."""
    state_dir = state_dir.resolve()
    conf = state_dir / "slurm.conf"
    if "slurmctld" in running_daemons(state_dir) and conf.is_file():
        return conf
    return None


def running_daemons(state_dir: Path) -> dict[str, int]:
    """The local cluster's daemons that are alive, by pid-file name."""
    alive = {}
    for pid_file in _pid_files(state_dir):
        pid = _read_pid(pid_file)
        if pid is not None and _is_our_daemon(pid, state_dir):
            alive[pid_file.stem] = pid
    return alive


def up(
    state_dir: Path = DEFAULT_STATE_DIR,
    nodes: int = 3,
    log: Callable[[str], None] = print,
    timeout: float = 60.0,
    accounting: bool = False,
) -> Path:
    """Start (or confirm) the local cluster; return its slurm.conf path. With ``accounting``
    it also runs slurmdbd on a private MariaDB, so ``sacct`` works."""
    state_dir = state_dir.resolve()
    if nodes < 1:
        raise LocalClusterError(f"--nodes must be at least 1, got {nodes}")
    if os.geteuid() != 0:
        raise LocalClusterError(
            "the local Slurm cluster needs root (slurmd launches jobs); on a real cluster "
            "use its Slurm instead and skip `cluster up`"
        )
    alive = running_daemons(state_dir)
    if alive:
        conf = state_dir / "slurm.conf"
        have = sum(1 for name in alive if name.startswith("slurmd-"))
        if have != nodes or "slurmctld" not in alive or accounting != ("slurmdbd" in alive):
            raise LocalClusterError(
                f"a local cluster in {state_dir} is partly running ({', '.join(sorted(alive))}); "
                f"run `auction-pipeline cluster down --state-dir {state_dir}` first"
            )
        log(f"local Slurm cluster already up in {state_dir}")
        return conf
    ensure_packages(log)
    if accounting:
        localaccounting.ensure_packages(log)
    for sub in ("run", "log", "state", "spool", "munge"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    socket_dir = munge_socket_for(state_dir).parent
    socket_dir.mkdir(parents=True, exist_ok=True)
    socket_dir.chmod(0o755)  # munged insists that clients can reach its socket
    (state_dir / "munge").chmod(0o700)
    key = state_dir / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
    # Ports are chosen free here and taken only when the daemons start: one cluster at a
    # time, so two starting at once (parallel test processes) cannot pick the same ones.
    with machine_lock("localslurm"):
        ctld_port = _free_port_block(16817, 1)
        first_node_port = _free_port_block(max(17001, ctld_port + 1), nodes)
        spec = LocalClusterSpec(
            state_dir=state_dir,
            nodes=nodes,
            controller_port=ctld_port,
            first_node_port=first_node_port,
            hostname=socket.gethostname(),
            accounting=_accounting_spec(state_dir, first_node_port + nodes) if accounting else None,
        )
        conf = state_dir / "slurm.conf"
        write_atomic(conf, render_slurm_conf(spec).encode())

        try:
            _start_daemons(spec, conf, key)
            _wait_until_idle(conf, nodes, timeout)
        except BaseException:
            down(state_dir, log=lambda line: None)  # stop whatever did start; leave no half cluster
            raise
    log(f"local Slurm cluster up: {nodes} node(s), partitions {', '.join(PARTITIONS)}")
    log(f"  use it from a shell with: export SLURM_CONF={conf}")
    return conf


def _accounting_spec(state_dir: Path, first_port: int) -> localaccounting.AccountingSpec:
    """Free ports for MariaDB and slurmdbd at or above ``first_port``."""
    database_port = _free_port_block(first_port, 1)
    dbd_port = _free_port_block(database_port + 1, 1)
    return localaccounting.new_spec(state_dir, munge_socket_for(state_dir), database_port, dbd_port)


def _start_daemons(spec: LocalClusterSpec, conf: Path, key: Path) -> None:
    """Start munged, slurmctld and one slurmd per virtual node; each forks into background."""
    state_dir = spec.state_dir
    munged = find_program("munged") or "munged"
    run_slurm(
        [
            munged,
            f"--socket={munge_socket_for(state_dir)}",
            f"--key-file={key}",
            f"--pid-file={state_dir}/run/munged.pid",
            f"--log-file={state_dir}/log/munged.log",
            f"--seed-file={state_dir}/munge/munged.seed",
        ]
    )
    if spec.accounting is not None:
        try:
            localaccounting.start(spec.accounting, conf)
            localaccounting.register_cluster(conf, CLUSTER_NAME)
        except (CommandError, localaccounting.AccountingError) as exc:
            raise LocalClusterError(f"Slurm accounting did not start: {exc}") from exc
    run_slurm([find_program("slurmctld") or "slurmctld", "-f", str(conf)])
    for name in spec.node_names:
        run_slurm([find_program("slurmd") or "slurmd", "-f", str(conf), "-N", name])


def start_node(state_dir: Path, node: str, timeout: float = 60.0) -> None:
    """Start the ``slurmd`` of one virtual node again (after a node-failure drill) and wait
    until Slurm takes jobs on it (``ReturnToService=2`` returns a DOWN node that registers)."""
    conf = state_dir.resolve() / "slurm.conf"
    run_slurm([find_program("slurmd") or "slurmd", "-f", str(conf), "-N", node])
    env = {**os.environ, "SLURM_CONF": str(conf)}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {row.node: row.state for row in node_states(env=env)}
        if states.get(node) in ("idle", "mixed", "allocated"):
            return
        time.sleep(0.5)
    raise LocalClusterError(f"node {node} did not return to service within {timeout:g} s")


def _wait_until_idle(conf: Path, nodes: int, timeout: float) -> None:
    env = {**os.environ, "SLURM_CONF": str(conf)}
    deadline = time.monotonic() + timeout
    last = "no answer from slurmctld"
    while time.monotonic() < deadline:
        try:
            states = node_states(env=env)
        except SlurmCommandError as exc:
            last = str(exc)
        else:
            idle = {row.node for row in states if row.state in ("idle", "mixed", "allocated")}
            if len(idle) >= nodes:
                return
            last = ", ".join(f"{row.node}={row.state}" for row in states)
        time.sleep(0.5)
    raise LocalClusterError(
        f"nodes did not become idle within {timeout:g} s ({last}); see {conf.parent}/log/"
    )


def down(
    state_dir: Path = DEFAULT_STATE_DIR, log: Callable[[str], None] = print, timeout: float = 20.0
) -> list[str]:
    """Cancel the cluster's jobs and stop the daemons it started; return what was stopped."""
    state_dir = state_dir.resolve()
    conf = running_cluster_conf(state_dir)
    if conf is not None:
        _cancel_all_jobs(conf, log, timeout)
    stopped = []
    for pid_file in _pid_files(state_dir):
        pid = _read_pid(pid_file)
        if pid is None or not _is_our_daemon(pid, state_dir):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_our_daemon(pid, state_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_our_daemon(pid, state_dir):
            os.kill(pid, signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        stopped.append(f"{pid_file.stem} (pid {pid})")
    shutil.rmtree(munge_socket_for(state_dir).parent, ignore_errors=True)
    log(f"stopped {', '.join(stopped)}" if stopped else f"no local cluster running in {state_dir}")
    return stopped


def _cancel_all_jobs(conf: Path, log: Callable[[str], None], timeout: float) -> None:
    """Cancel every job and wait until the queue is empty: job processes outlive slurmd."""
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        run_slurm(["scancel", "--user", str(os.geteuid()), "--full"], env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            queue = run_slurm(["squeue", "--noheader", "-o", SQUEUE_FORMAT], env=env).stdout
            if not parse_squeue(queue):
                return
            time.sleep(0.5)
        log(f"jobs still in the queue after {timeout:g} s; stopping the daemons anyway")
    except SlurmCommandError as exc:
        log(f"could not cancel the cluster's jobs ({exc}); stopping the daemons anyway")


def status(state_dir: Path = DEFAULT_STATE_DIR) -> tuple[bool, str]:
    """Whether the local cluster in ``state_dir`` runs and its controller answers, and a
    short, sinfo-like description of it (or of why not)."""
    state_dir = state_dir.resolve()
    alive = running_daemons(state_dir)
    if "slurmctld" not in alive:
        return False, (
            f"no local cluster running in {state_dir} (start one: auction-pipeline cluster up)"
        )
    daemons = "daemons: " + ", ".join(f"{name} ({pid})" for name, pid in alive.items())
    env = {**os.environ, "SLURM_CONF": str(state_dir / "slurm.conf")}
    try:
        rows = node_states(env=env)
    except SlurmCommandError as exc:
        return False, (
            f"local Slurm cluster in {state_dir}: slurmctld (pid {alive['slurmctld']}) runs "
            f"but does not answer: {exc}; restart it: auction-pipeline cluster down, then up"
        )
    lines = [f"local Slurm cluster in {state_dir}", daemons]
    lines.append(f"{'NODE':<8}{'PARTITION':<11}{'STATE':<12}{'CPUS':>5}{'MEMORY':>9}")
    for row in rows:
        lines.append(
            f"{row.node:<8}{row.partition:<11}{row.state:<12}{row.cpus:>5}{row.memory_mb:>9}"
        )
    return True, "\n".join(lines)


def use_running_cluster(
    state_dir: Path = DEFAULT_STATE_DIR, log: Callable[[str], None] = print
) -> None:
    """Point Slurm commands at ``cluster up``'s cluster when no SLURM_CONF is set."""
    if os.environ.get("SLURM_CONF"):
        return
    conf = running_cluster_conf(state_dir)
    if conf is not None:
        os.environ["SLURM_CONF"] = str(conf)
        log(f"using the local Slurm cluster in {conf.parent} (SLURM_CONF={conf})")
