#!/usr/bin/env bash
# Set up .venv/ at the repository root with exactly the versions in requirements.lock,
# then install this project into it (editable). Safe to re-run: it only reinstalls
# when requirements.lock or pyproject.toml changed.
#
# Needs Python 3.11 with venv. On a fresh Debian 12 machine run as root it installs
# python3-venv with apt when missing; elsewhere it tells you what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

if ! PY=$(pick_python); then
    echo "bootstrap: Python 3.11 is required (python3.11 or python3 on PATH, or set PYTHON=/path/to/python3.11)." >&2
    echo "bootstrap: on Debian 12: apt-get install python3 python3-venv; on a cluster: module load python/3.11" >&2
    exit 1
fi

if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "bootstrap: installing python3-venv with apt-get" >&2
        export DEBIAN_FRONTEND=noninteractive
        # A fresh machine may have empty package lists: update once, then retry.
        apt-get install -y -q python3-venv >/dev/null ||
            { apt-get update -q >/dev/null && apt-get install -y -q python3-venv >/dev/null; }
    else
        echo "bootstrap: $PY has no venv/ensurepip module; install python3-venv (Debian) or load a Python module that has it." >&2
        exit 1
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "bootstrap: creating .venv with $("$PY" --version)" >&2
    "$PY" -m venv .venv
fi

stamp=.venv/.auction-pipeline-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "bootstrap: installing pinned dependencies from requirements.lock (about a minute)" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
    echo "$want" > "$stamp"
fi
echo "bootstrap: .venv ready ($(.venv/bin/auction-pipeline --version 2>/dev/null || echo 'auction-pipeline'))" >&2
