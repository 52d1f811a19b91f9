"""The one way this product runs an external program: argument list, no shell, a timeout,
and an error that carries the command, exit code, stdout and stderr.

Each family of commands gets its own error subclass (``SlurmCommandError``,
``PostgresCommandError``) so callers can tell them apart, but they all go through here.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path


class CommandError(RuntimeError):
    """An external command failed or could not be run; carries everything needed to debug it."""

    def __init__(self, argv: Sequence[str], returncode: int | None, stdout: str, stderr: str):
        """Record the command, its exit code (None if it did not run to the end) and output."""
        self.argv = list(argv)
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        shown = " ".join(self.argv)
        if returncode is None:
            detail = stderr or "could not be started"
        else:
            detail = f"exit code {returncode}: {stderr.strip() or stdout.strip() or '(no output)'}"
        super().__init__(f"`{shown}` failed ({detail})")


def run_command(
    argv: Sequence[str],
    *,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    error: type[CommandError] = CommandError,
    missing_hint: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run one command and return its completed process.

    Raises ``error`` when the program is missing (with ``missing_hint`` as the fix), times
    out, or (with ``check``) exits non-zero.
    """
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            check=False,
        )
    except FileNotFoundError:
        hint = f": {missing_hint}" if missing_hint else ""
        raise error(argv, None, "", f"{argv[0]} not found on PATH{hint}") from None
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout if isinstance(exc.stdout, str) else ""
        err = exc.stderr if isinstance(exc.stderr, str) else ""
        raise error(argv, None, out, f"timed out after {timeout:g} s {err}".strip()) from None
    if check and proc.returncode != 0:
        raise error(argv, proc.returncode, proc.stdout, proc.stderr)
    return proc


def find_program(program: str) -> str | None:
    """A program on PATH or in the sbin directories a non-login shell may lack."""
    return shutil.which(program) or shutil.which(program, path="/usr/sbin:/sbin")
