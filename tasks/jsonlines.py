"""Read the JSON-lines files the process step writes, validating every line against its model.

A line that does not validate (a file written by hand, or by a release with looser rules) is
refused with the file, the line number, the URL it names and what is wrong, before anything
reaches the database.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class UnstorableValueError(ValueError):
    """A value does not fit its column or record; the message names site, URL, field, value."""


def read_models(files: Iterable[Path], model: type[M], noun: str) -> list[M]:
    """Every line of ``files`` as a ``model``; ``noun`` ("lot", "seller") names the record
    in errors. Raises UnstorableValueError for the first line that does not validate."""
    records = []
    for file in files:
        lines = file.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if not line:
                continue
            try:
                records.append(model.model_validate_json(line))
            except ValidationError as exc:
                problems = "; ".join(_problem(e) for e in exc.errors())
                raise UnstorableValueError(
                    f"{file}, line {number}{_url_in(line, noun)}: not a valid {noun} "
                    f"({problems[:300]})"
                ) from None
    return records


def _problem(error: Any) -> str:
    """One validation error as ``field = value: why`` (the value cut short)."""
    where = ".".join(map(str, error["loc"]))
    value = error.get("input")
    if not where or isinstance(value, dict | list):
        return f"{where or 'record'}: {error['msg']}"
    return f"{where} = {str(value)[:80]!r}: {error['msg']}"


def _url_in(line: str, noun: str) -> str:
    """ ", lot <url>" when a JSON line names its URL, for messages."""
    try:
        url = json.loads(line).get("url")
    except (ValueError, AttributeError):
        return ""
    return f", {noun} {url}" if isinstance(url, str) else ""
