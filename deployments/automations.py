"""The automations of ``deployments/automations.yaml``: checked, then created or updated by name.

The file is in the format ``prefect automation create --from-file`` reads (an
``automations:`` list of Prefect's ``AutomationCore``), so it can be applied with Prefect's
own command. That command creates a new copy each time; ``auction-pipeline deploy`` instead
updates the automation of the same name in place (and removes copies an earlier
``prefect automation create`` left), so registering twice changes nothing.

The crash-detection automation is checked against the deployments: a heartbeat-watching
trigger whose window is not longer than a deployment's heartbeat would crash every healthy
run of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from deployments.config import Deployment, DeploymentConfigError
from infra.yamlfiles import ConfigFileError, load_config_file

AUTOMATIONS_FILE = Path(__file__).resolve().parent / "automations.yaml"
CRASH_DETECTION = "auction-pipeline: crash runs that stop heartbeating"
HEARTBEAT_EVENT = "prefect.flow-run.heartbeat"


def load_automations(path: Path = AUTOMATIONS_FILE) -> list[Any]:
    """The automations of ``path``, validated as Prefect validates them."""
    from prefect.events.schemas.automations import AutomationCore

    try:
        raw = load_config_file(path, "automations file")
    except ConfigFileError as exc:
        raise DeploymentConfigError(str(exc)) from exc
    listed = raw.get("automations") if isinstance(raw, dict) else None
    if not isinstance(listed, list):
        raise DeploymentConfigError(f"{path}: expected `automations:`, a list of automations")
    automations = []
    for i, spec in enumerate(listed):
        try:
            automations.append(AutomationCore.model_validate(spec))
        except ValidationError as exc:
            name = spec.get("name") if isinstance(spec, dict) else None
            raise DeploymentConfigError(f"{path}: automations[{i}] ({name}): {exc}") from exc
    names = [a.name for a in automations]
    if len(set(names)) != len(names):
        raise DeploymentConfigError(f"{path}: two automations share a name ({names})")
    return automations


def heartbeat_window(automation: Any) -> float | None:
    """Seconds without a heartbeat after which ``automation`` fires, if it watches them."""
    from prefect.events.schemas.automations import EventTrigger, Posture

    trigger = automation.trigger
    if not isinstance(trigger, EventTrigger) or trigger.posture != Posture.Proactive:
        return None
    if HEARTBEAT_EVENT not in trigger.after:
        return None
    return trigger.within.total_seconds()


def check_windows(automations: list[Any], deployments: list[Deployment], path: Path) -> None:
    """Every heartbeat window is longer than every deployment's heartbeat."""
    for automation in automations:
        window = heartbeat_window(automation)
        if window is None:
            continue
        for deployment in deployments:
            beat = deployment.heartbeat_seconds
            if beat is not None and window <= beat:
                raise DeploymentConfigError(
                    f"{path}: automation {automation.name!r} crashes runs after {window:g} s "
                    f"without a heartbeat, but deployment {deployment.name!r} heartbeats every "
                    f"{beat} s; make `within` a few heartbeats long"
                )


def ensure_automations(automations: list[Any]) -> list[tuple[str, UUID]]:
    """Create each automation, or update the one of the same name in place; names and ids."""
    from prefect.client.orchestration import get_client

    done = []
    with get_client(sync_client=True) as client:
        for wanted in automations:
            existing = client.read_automations_by_name(wanted.name)
            if not existing:
                done.append((wanted.name, client.create_automation(wanted)))
                continue
            first, *copies = existing
            client.update_automation(first.id, wanted)
            for extra in copies:  # left by `prefect automation create`, which always adds
                client.delete_automation(extra.id)
            done.append((wanted.name, first.id))
    return done
