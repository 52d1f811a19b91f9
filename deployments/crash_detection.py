"""Mark a flow run Crashed when its process stops heartbeating (a lost node, a killed host).

A flow process killed on a host that survives is reported by the worker that started it. When
the whole host is gone (the worker with it) nobody is left to report: the run would stay
Running forever. Flow runs of the daily flow emit a heartbeat event every
``heartbeat_seconds`` (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, set per deployment); the
server-side automation registered here marks a run Crashed when no heartbeat and no final
state followed the last heartbeat within ``crashed_after_seconds``. The crashed run is then
mailed like any other (``auction-pipeline notifier``). This is Prefect's documented recipe
for "zombie" runs, scoped to this product's flow so other flows on a shared server are left
alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

AUTOMATION_NAME = "auction-pipeline: crash runs that stop heartbeating"

# After a heartbeat, any of these events for the same run means it is alive or finished.
_ALIVE_OR_FINAL = {
    "prefect.flow-run.heartbeat",
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
}


def automation(flow_name: str, crashed_after_seconds: int) -> Any:
    """The automation (not yet registered) for runs of ``flow_name``."""
    from prefect.automations import AutomationCore
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=AUTOMATION_NAME,
        description=(
            f"Runs of {flow_name} that sent no heartbeat for {crashed_after_seconds} s are "
            "marked Crashed (registered by `auction-pipeline deploy`)."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect=_ALIVE_OR_FINAL,
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification(
                {"prefect.resource.role": "flow", "prefect.resource.name": flow_name}
            ),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=crashed_after_seconds),
        ),
        actions=[
            ChangeFlowRunState(
                name="Crashed",
                state=StateType.CRASHED,
                force=False,
                message=(
                    f"no heartbeat from the flow process for {crashed_after_seconds} s: its "
                    "host or process died without reporting (lost node, killed job or "
                    "worker). Finished sites are reused when the day is run again."
                ),
            )
        ],
    )


def ensure_crash_detection(flow_name: str, crashed_after_seconds: int) -> UUID:
    """Create the automation, or update the one of the same name in place; its id."""
    from prefect.client.orchestration import get_client

    wanted = automation(flow_name, crashed_after_seconds)
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(AUTOMATION_NAME)
        if not existing:
            return client.create_automation(wanted)
        first, *duplicates = existing
        client.update_automation(first.id, wanted)
        for extra in duplicates:  # left by an older, non-idempotent registration
            client.delete_automation(extra.id)
        return first.id
