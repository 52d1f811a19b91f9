"""Read and check ``prefect.yaml`` before anything is registered from it.

``prefect deploy`` accepts almost anything: a misspelt profile is found at 06:00 the next day,
an unset ``{{ $VAR }}`` is registered as an empty string, a relative data root is read on
another host. ``auction-pipeline deploy`` reads the same file first and refuses, naming the
deployment and field:

- a deployment without a name, an entrypoint or a work pool, or with a schedule without an
  explicit time zone (Prefect would count it in UTC);
- a ``profile`` parameter that ``infra/profiles.yaml`` does not define;
- an environment variable the file names that is not set, and ``${VAR}`` references (the
  old deployments file's syntax, which Prefect would register literally);
- a ``data_root`` that is not absolute once resolved;
- a heartbeat below Prefect's minimum of 30 s.

Values are resolved the way Prefect resolves them (``prefect.utilities.templating``), so what
is checked is what Prefect registers. Read within the bounds of ``infra/yamlfiles.py``.
"""

from __future__ import annotations

import os
import re
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.yamlfiles import ConfigFileError, load_config_file

REPO_ROOT = Path(__file__).resolve().parents[1]
PREFECT_FILE = REPO_ROOT / "prefect.yaml"
HEARTBEAT_VARIABLE = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
MIN_HEARTBEAT_SECONDS = 30  # Prefect refuses a shorter heartbeat
_OLD_REF = re.compile(r"\$\{[A-Z0-9_]+(:-[^}]*)?\}")


class DeploymentConfigError(ValueError):
    """The deployments file is unreadable or invalid; the message names file and field."""


@dataclass(frozen=True)
class Deployment:
    """One deployment of ``prefect.yaml``, its values resolved as Prefect resolves them."""

    name: str
    entrypoint: str
    work_pool: str
    parameters: dict[str, Any]
    schedules: list[dict[str, Any]]
    job_variables: dict[str, Any]

    @property
    def heartbeat_seconds(self) -> int | None:
        """The heartbeat its runs send (seconds), if its job variables set one."""
        env = self.job_variables.get("env") or {}
        value = env.get(HEARTBEAT_VARIABLE) if isinstance(env, dict) else None
        return None if value is None else int(value)


def _env_refs(value: object, where: str) -> list[tuple[str, str]]:
    """Every ``{{ $NAME }}`` in ``value``, with the key path it sits at."""
    from prefect.utilities.templating import PlaceholderType, find_placeholders

    if isinstance(value, dict):
        return [ref for k, v in value.items() for ref in _env_refs(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [ref for i, v in enumerate(value) for ref in _env_refs(v, f"{where}[{i}]")]
    if isinstance(value, str):
        found = [p.name[1:] for p in find_placeholders(value) if p.type is PlaceholderType.ENV_VAR]
        if _OLD_REF.search(value):
            raise DeploymentConfigError(
                f"{where}: {value!r} uses ${{VAR}}, which Prefect registers as written; "
                "write {{ $VAR }} (Prefect's syntax, without a default) and set VAR"
            )
        return [(where, name) for name in found]
    return []


def _resolve(value: object) -> Any:
    """``value`` with environment references replaced, as ``prefect deploy`` does."""
    from prefect.utilities.templating import apply_values

    return apply_values(value, dict(os.environ), remove_notset=False)


def _text(spec: dict[str, Any], key: str, where: str) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DeploymentConfigError(f"{where}: `{key}` is missing or not a string")
    return value


def _deployment(spec: object, where: str) -> Deployment:
    """One entry of ``deployments:``, checked and resolved."""
    if not isinstance(spec, dict):
        raise DeploymentConfigError(f"{where}: expected a mapping, got {type(spec).__name__}")
    name = _text(spec, "name", where)
    where = f"{where.split('[')[0]}[{name}]"
    resolved = _resolve(spec)
    pool = resolved.get("work_pool")
    if not isinstance(pool, dict) or not isinstance(pool.get("name"), str):
        raise DeploymentConfigError(f"{where}.work_pool: needs a `name` (the work pool)")
    schedules = resolved.get("schedules") or []
    if not isinstance(schedules, list):
        raise DeploymentConfigError(f"{where}.schedules: expected a list of schedules")
    for i, schedule in enumerate(schedules):
        _check_schedule(schedule, f"{where}.schedules[{i}]")
    parameters = resolved.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise DeploymentConfigError(f"{where}.parameters: expected a mapping")
    deployment = Deployment(
        name=name,
        entrypoint=_text(resolved, "entrypoint", where),
        work_pool=pool["name"],
        parameters=parameters,
        schedules=schedules,
        job_variables=pool.get("job_variables") or {},
    )
    _check_parameters(deployment, where)
    heartbeat_at = f"{where}.work_pool.job_variables.env.{HEARTBEAT_VARIABLE}"
    try:
        heartbeat = deployment.heartbeat_seconds
    except (TypeError, ValueError):
        raise DeploymentConfigError(f"{heartbeat_at}: expected whole seconds") from None
    if heartbeat is not None and heartbeat < MIN_HEARTBEAT_SECONDS:
        raise DeploymentConfigError(
            f"{heartbeat_at}: {heartbeat} is below Prefect's minimum of {MIN_HEARTBEAT_SECONDS} s"
        )
    return deployment


def _check_schedule(schedule: object, where: str) -> None:
    """A schedule states its time zone: without one, Prefect counts the cron in UTC."""
    if not isinstance(schedule, dict):
        raise DeploymentConfigError(f"{where}: expected a mapping with `cron` and `timezone`")
    zone = schedule.get("timezone")
    if not isinstance(zone, str):
        raise DeploymentConfigError(
            f"{where}: `timezone` is missing; name the zone the schedule counts in "
            "(e.g. Europe/London), or UTC"
        )
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise DeploymentConfigError(f"{where}.timezone: unknown time zone {zone!r}") from None


def _check_parameters(deployment: Deployment, where: str) -> None:
    """A known profile, and an absolute data root: runs execute on other hosts."""
    from infra.profiles import load_profile

    profile = deployment.parameters.get("profile")
    if not isinstance(profile, str):
        raise DeploymentConfigError(f"{where}.parameters.profile: missing")
    try:
        load_profile(profile)
    except ValueError as exc:
        raise DeploymentConfigError(f"{where}.parameters.profile: {exc}") from exc
    root = deployment.parameters.get("data_root")
    if root is not None and not (isinstance(root, str) and os.path.isabs(root)):
        raise DeploymentConfigError(
            f"{where}.parameters.data_root: {root!r} is not an absolute path; its runs read "
            "and write it from other hosts, so give its place on the shared filesystem"
        )


def load_prefect_file(
    path: Path = PREFECT_FILE, names: list[str] | None = None
) -> list[Deployment]:
    """The deployments of ``path`` (only ``names``, if given), checked and resolved."""
    try:
        raw = load_config_file(path, "deployments file")
    except ConfigFileError as exc:
        raise DeploymentConfigError(str(exc)) from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("deployments"), list):
        raise DeploymentConfigError(f"{path}: expected `deployments:`, a list of deployments")
    listed = [d.get("name") if isinstance(d, dict) else None for d in raw["deployments"]]
    unknown = sorted(set(names or []) - {n for n in listed if isinstance(n, str)})
    if unknown:
        raise DeploymentConfigError(
            f"{path}: no deployment named {', '.join(unknown)} (the file has "
            f"{', '.join(str(n) for n in listed)})"
        )
    picked = [
        (i, spec) for i, spec in enumerate(raw["deployments"]) if not names or listed[i] in names
    ]
    try:
        return _checked(picked, listed)
    except DeploymentConfigError as exc:
        raise DeploymentConfigError(f"{path}: {exc}") from exc


def _checked(picked: list[tuple[int, Any]], listed: list[Any]) -> list[Deployment]:
    """The picked deployments, resolved, once every variable they name is set."""
    refs = [ref for i, spec in picked for ref in _env_refs(spec, f"deployments[{listed[i]}]")]
    missing = [f"{where} needs {var}" for where, var in refs if not os.environ.get(var)]
    if missing:  # all at once: the user sets them in one go
        raise DeploymentConfigError(
            f"environment variable(s) not set: {'; '.join(missing)}. Prefect has no default "
            "for {{ $VAR }}: export each before deploying"
        )
    return [_deployment(spec, f"deployments[{i}]") for i, spec in picked]
