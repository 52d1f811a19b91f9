"""Install missing Debian packages with apt-get, the one way the product's scripts do it.

The local Slurm cluster, the throw-away PostgreSQL and the browser the UI test drives are
Debian packages. On a fresh Debian machine run as root they are installed on first use; as
anybody else the error names the exact ``apt-get install`` line to run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence

from infra.commands import CommandError, run_command
from infra.locks import machine_lock


class PackagesMissing(RuntimeError):
    """Packages are absent and cannot be installed here; the message gives the command."""


def install_packages(
    packages: Sequence[str],
    *,
    why: str,
    error: type[CommandError] = CommandError,
    log: Callable[[str], None] = print,
) -> None:
    """``apt-get install`` the packages (``why`` says what needs them, for the messages).

    A fresh machine may have empty or stale package lists: the install is retried once
    after ``apt-get update``. Failing commands raise ``error``.
    """
    if not packages:
        return
    line = f"apt-get install {' '.join(packages)}"
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise PackagesMissing(f"{why} needs {', '.join(packages)}: install as root with `{line}`")
    log(f"installing {', '.join(packages)} with apt-get for {why}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    # One installer at a time: parallel test processes may all find a package missing, and a
    # second apt-get would fail on dpkg's lock.
    with machine_lock("apt"):
        try:
            run_command(install, timeout=900, env=env, error=error)
        except CommandError:
            run_command(["apt-get", "update", "-q"], timeout=900, env=env, error=error)
            run_command(install, timeout=900, env=env, error=error)
