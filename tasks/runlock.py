"""One run per data root and day: the lock a run holds while it collects or reprocesses a day.

Two runs of the same day on one data root (the scheduled run and an ad hoc one, a notebook, a
re-run while the first still crawls) would crawl every site twice and delete each other's
in-flight WARC files. So a run takes ``<data-root>/.locks/<date>.lock`` for its whole length
and a second run of that day is refused at once, naming who holds it. Runs of other days go
ahead: they share only the database (one writer at a time, SQLite's own lock) and the
content-addressed images (written atomically).

The lock is a POSIX record lock (``fcntl.lockf``), which the kernel releases when its process
dies however it dies (``kill -9``, a lost node's NFS lease), so a crashed run never leaves the
day locked. It holds across nodes only where the shared filesystem gives POSIX locks to every
client: NFS with its lock manager (NLM for v3, built into v4), GPFS / IBM Storage Scale, and
Lustre mounted with ``-o flock``. Lustre's ``localflock``, NFS's ``nolock`` /
``local_lock=``, and BeeGFS without ``tuneUseGlobalFileLocks`` give locks that only this node
sees: :func:`lock_scope_warning` names them, and a filesystem that refuses locks outright
(ENOLCK, ENOSYS: NFS without its lock manager, Lustre without ``flock``) stops the run with
the fix.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path


class DataRootBusy(RuntimeError):
    """Another run holds the day's lock; the message names it."""


class LockingUnsupported(RuntimeError):
    """The data root's filesystem refuses file locks; the message names the fix."""


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/self/mountinfo``: where, what filesystem, with which options."""

    point: str
    fstype: str
    options: frozenset[str]


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts of ``/proc/self/mountinfo`` text (proc(5)); pure, for tests with real lines.

    Each line is ``id parent major:minor root point options [optional...] - fstype source
    super-options``; the mount's and the superblock's options are merged.
    """
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        point = fields[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        options = {*fields[5].split(","), *(tail[2].split(",") if len(tail) > 2 else [])}
        mounts.append(Mount(point, tail[0], frozenset(options)))
    return mounts


def mount_of(path: Path, mounts: list[Mount]) -> Mount | None:
    """The mount ``path`` lives on: the longest mount point that contains it (the last
    mounted wins on equal points, as in the kernel)."""
    resolved = str(path.resolve())
    best: Mount | None = None
    for mount in mounts:
        point = mount.point.rstrip("/") or "/"
        inside = resolved == point or resolved.startswith(point if point == "/" else point + "/")
        if inside and (best is None or len(point) >= len(best.point.rstrip("/") or "/")):
            best = mount
    return best


def lock_scope_warning(mount: Mount | None) -> str | None:
    """Why locks on ``mount`` would be seen by this node only, or None when they are global."""
    if mount is None:
        return None
    kind, options = mount.fstype, mount.options
    if kind.startswith("nfs") and (
        "nolock" in options
        or any(o.startswith("local_lock=") and o != "local_lock=none" for o in options)
    ):
        return (
            f"{mount.point} is NFS mounted with {'nolock' if 'nolock' in options else 'local_lock'}"
            ": run locks are seen by this node only"
        )
    if kind == "lustre" and "flock" not in options:
        return f"{mount.point} is Lustre without -o flock: run locks are seen by this node only"
    if kind in ("beegfs", "fuse.beegfs"):
        return (
            f"{mount.point} is BeeGFS: run locks are node-local unless the client sets "
            "tuneUseGlobalFileLocks=true"
        )
    return None


def _filesystem_note(path: Path) -> str:
    try:
        mount = mount_of(path, parse_mountinfo(Path("/proc/self/mountinfo").read_text()))
    except OSError:
        return ""
    return f" ({mount.fstype} at {mount.point})" if mount else ""


def _holder(path: Path) -> str:
    """Who holds the lock, from what the holder wrote into the lock file."""
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return (
        f"{info.get('purpose', 'a run')} (pid {info.get('pid')} on {info.get('host')}, "
        f"since {info.get('since')})"
    )


def _busy(data_root: Path, day: date, path: Path) -> DataRootBusy:
    return DataRootBusy(
        f"{data_root} is busy with {day}: {_holder(path)} holds {path}; wait for it to end "
        "(or stop it), then run again"
    )


def lock_path(data_root: Path, day: date) -> Path:
    """The lock file of ``day`` under ``data_root``."""
    return data_root / ".locks" / f"{day.isoformat()}.lock"


@contextmanager
def day_lock(data_root: Path, day: date, purpose: str) -> Iterator[Path]:
    """Hold the lock of ``day`` on ``data_root`` for the block, or raise at once.

    Raises :class:`DataRootBusy` naming the holder (``purpose``, pid, host, start time, as it
    wrote them) when another process holds it, and :class:`LockingUnsupported` when the
    filesystem refuses locks. Re-entrant within one process (POSIX locks belong to the
    process), so the command line and the flow it runs may both take it.
    """
    path = lock_path(data_root, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise _busy(data_root, day, path) from None
            if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP):
                raise LockingUnsupported(
                    f"cannot lock {path}{_filesystem_note(path)}: {exc.strerror}. The data root "
                    "needs POSIX file locks: on NFS run the lock manager (rpc.statd/lockd, or "
                    "NFSv4), on Lustre mount with -o flock; or choose a data root on a "
                    "filesystem that has them (README: 'Data root')"
                ) from None
            raise
        holder = {
            "purpose": purpose,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock (every POSIX lock of this process on the file)


def check_free(data_root: Path, day: date) -> None:
    """Raise :class:`DataRootBusy` if a run holds ``day`` now; create nothing.

    For the command line, to refuse before it starts a server; the flow's own
    :func:`day_lock` stays the one that counts.
    """
    path = lock_path(data_root, day)
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return  # no lock file (or none we may open): no run of ours holds it
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            raise _busy(data_root, day, path) from None
    finally:
        os.close(fd)


def lock_warning(data_root: Path) -> str | None:
    """A warning when the data root's filesystem gives node-local locks only, else None."""
    try:
        mounts = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    except OSError:
        return None
    why = lock_scope_warning(mount_of(data_root, mounts))
    if why is None:
        return None
    return (
        f"{why}; a second run of the same day on another node would not be stopped. Run "
        "every run of a data root from one node, or remount (README: 'Data root')"
    )
