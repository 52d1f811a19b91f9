"""A lock shared by every process on this machine, for the few steps that must not overlap.

Two test processes (pytest-xdist) or two users' commands may both find a package missing,
or both pick the same free ports for a local cluster in the moment before either binds them.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def machine_lock(name: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``/tmp/auction-pipeline-<name>.lock`` for the block."""
    with open(f"/tmp/auction-pipeline-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
