"""Durations set in minutes by environment variables (lateness, missed runs).

One reader so every such setting accepts the same values and refuses the others the same
way: a number of minutes from 0 to a week, decimals allowed; anything else (negative, NaN,
text, more than a week) is refused naming the variable and an example.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

WEEK_MINUTES = 7 * 24 * 60


def minutes_setting(
    name: str, default: timedelta, environ: Mapping[str, str] = os.environ
) -> timedelta:
    """``$name`` as a duration in minutes, ``default`` when unset or empty; ValueError
    naming the variable for a value that is not minutes from 0 to a week."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        minutes = float(text)
    except ValueError:
        minutes = -1.0
    if not 0 <= minutes <= WEEK_MINUTES:  # NaN fails too
        example = int(default.total_seconds() // 60)
        raise ValueError(
            f"{name}={text!r}: expected minutes from 0 to {WEEK_MINUTES} (a week), e.g. {example}"
        )
    return timedelta(minutes=minutes)
