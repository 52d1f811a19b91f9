"""Cluster profiles: one typed model, loaded once from ``infra/profiles.yaml`` plus environment
overrides.

A profile says where the Dask workers of a flow run live: ``local`` (a LocalCluster on this
machine) or ``slurm`` (dask-jobqueue jobs on a partition). Precedence is explicit argument >
environment (``AUCTION_PIPELINE__<PROFILE>__<KEY>``) > file. Errors name the file, profile and
key, and what was expected.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from infra.yamlfiles import ConfigFileError, load_config_file, parse_config_text

DEFAULT_PROFILES_FILE = Path(__file__).resolve().parent / "profiles.yaml"
ENV_FILE = "AUCTION_PIPELINE_PROFILES"
ENV_PREFIX = "AUCTION_PIPELINE__"

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$")
_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d{1,2}):(\d{2}):(\d{2})$")


class ProfileError(ValueError):
    """A profile is unknown, or the profiles file or an override is invalid."""


def parse_walltime(text: str) -> int:
    """Seconds in a Slurm walltime ``[D-]HH:MM:SS``."""
    match = _WALLTIME.match(text.strip())
    if not match:
        raise ValueError(f"walltime {text!r} is not [D-]HH:MM:SS, e.g. '01:30:00'")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total <= 0:
        raise ValueError(f"walltime {text!r} must be positive")
    return total


class Adapt(BaseModel):
    """Adaptive scaling bounds, in Slurm jobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    minimum_jobs: Annotated[int, Field(ge=1)] = 1
    maximum_jobs: Annotated[int, Field(ge=1)] = 3
    idle_seconds: Annotated[int, Field(ge=1)] = 60

    @model_validator(mode="after")
    def _ordered(self) -> Adapt:
        if self.maximum_jobs < self.minimum_jobs:
            raise ValueError(
                f"maximum_jobs ({self.maximum_jobs}) is below minimum_jobs ({self.minimum_jobs})"
            )
        return self


def _check_size(value: str) -> str:
    """A memory size such as '4GiB': a number and a unit, more than zero (Slurm and Dask
    read 0 as "no limit" or refuse the job, neither of which the profile meant)."""
    match = _SIZE.match(value)
    if not match:
        raise ValueError(f"memory {value!r} is not a size such as '4GiB' or '500MB'")
    if float(match[1]) == 0:
        raise ValueError(f"memory {value!r} must be more than zero, e.g. '4GiB'")
    return value


Memory = Annotated[str, AfterValidator(_check_size)]


class LocalProfile(BaseModel):
    """Workers as local processes: the embedded default, no Slurm needed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["local"]
    workers: Annotated[int, Field(ge=1)] = 2
    threads_per_worker: Annotated[int, Field(ge=1)] = 1
    memory: Memory = "2GiB"


class SlurmProfile(BaseModel):
    """Workers as Slurm jobs on one partition, started and scaled by dask-jobqueue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["slurm"]
    partition: Annotated[str, Field(min_length=1)]
    account: str | None = None
    qos: str | None = None
    cores: Annotated[int, Field(ge=1)] = 1
    memory: Memory = "2GiB"
    processes: Annotated[int, Field(ge=1)] = 1
    walltime: str = "00:30:00"
    extra_directives: list[str] = Field(default_factory=list)
    prologue: list[str] = Field(default_factory=list)
    adapt: Adapt = Adapt()
    interface: str | None = None
    local_directory: str = "/tmp"
    worker_start_timeout: Annotated[float, Field(gt=0)] = 300.0

    @field_validator("walltime")
    @classmethod
    def _walltime(cls, value: str) -> str:
        parse_walltime(value)
        return value

    @property
    def walltime_seconds(self) -> int:
        """The walltime in seconds."""
        return parse_walltime(self.walltime)


Profile = LocalProfile | SlurmProfile


def profiles_file() -> Path:
    """The profiles file in use: ``$AUCTION_PIPELINE_PROFILES`` or ``infra/profiles.yaml``."""
    return Path(os.environ.get(ENV_FILE) or DEFAULT_PROFILES_FILE)


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    """The profiles of ``path`` by name, read within the bounds of infra/yamlfiles.py."""
    try:
        data = load_config_file(path, "profiles file")
    except ConfigFileError as exc:
        raise ProfileError(str(exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        raise ProfileError(f"profiles file {path}: expected a top-level 'profiles:' mapping")
    profiles: dict[str, dict[str, Any]] = data["profiles"]
    for name, body in profiles.items():
        if not isinstance(body, dict):
            raise ProfileError(f"profiles file {path}: profile {name!r} must be a mapping")
    return profiles


def _apply_env(
    name: str, body: dict[str, Any], environ: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The profile with environment overrides merged in, and which variable set which key."""
    prefix = f"{ENV_PREFIX}{name.upper()}__"
    merged = dict(body)
    sources: dict[str, str] = {}
    for var, text in sorted(environ.items()):
        if not var.startswith(prefix):
            continue
        keys = [k.lower() for k in var[len(prefix) :].split("__")]
        try:
            value = parse_config_text(text, var) if text else None
        except ConfigFileError as exc:
            raise ProfileError(f"{exc}; expected a YAML scalar or list") from exc
        target = merged
        for depth, key in enumerate(keys[:-1]):
            inner = target.get(key) or {}
            if not isinstance(inner, dict):
                where = ".".join(keys[: depth + 1])
                raise ProfileError(
                    f"{var}: profile {name!r} key {where!r} is {inner!r}, not a mapping, so it "
                    f"has no {keys[depth + 1]!r}"
                )
            target[key] = dict(inner)
            target = target[key]
        target[keys[-1]] = value
        sources[".".join(keys)] = var
    return merged, sources


def _describe(error: ValidationError, sources: dict[str, str]) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"][1:] if p not in ("local", "slurm"))
        origin = f" (set by {sources[where]})" if where in sources else ""
        parts.append(f"{where or item['loc'][0]}{origin}: {item['msg']}")
    return "; ".join(parts)


class _Envelope(BaseModel):
    profile: Annotated[LocalProfile | SlurmProfile, Field(discriminator="kind")]


def load_profile(
    name: str, path: Path | None = None, environ: dict[str, str] | None = None
) -> Profile:
    """Load profile ``name`` with environment overrides applied, or raise ProfileError."""
    path = path or profiles_file()
    environ = dict(os.environ) if environ is None else environ
    profiles = _read_file(path)
    if name not in profiles:
        raise ProfileError(
            f"unknown profile {name!r}; profiles in {path}: {', '.join(sorted(profiles))}"
        )
    body, sources = _apply_env(name, profiles[name], environ)
    try:
        return _Envelope.model_validate({"profile": {**body, "name": name}}).profile
    except ValidationError as exc:
        raise ProfileError(f"profile {name!r} in {path}: {_describe(exc, sources)}") from exc
