"""What `auction-pipeline deploy` refuses in prefect.yaml and automations.yaml before a server
is asked: each refusal names the file, the deployment and the field, and says what to do."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployments.automations import AUTOMATIONS_FILE, check_windows, load_automations
from deployments.config import PREFECT_FILE, DeploymentConfigError, load_prefect_file
from deployments.register import plan, prefect_deploy_argv
from flows.stages import data_root_of

ROOTS = {
    "AUCTION_PIPELINE_PROD_DATA_ROOT": "/shared/prod",
    "AUCTION_PIPELINE_DEV_DATA_ROOT": "/shared/dev",
}
HOUSES = ["harrow-finch", "hotel-lumiere", "brooklyn-gallery"]


@pytest.fixture
def roots(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ROOTS.items():
        monkeypatch.setenv(key, value)


def _edited(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    content = yaml.safe_load(PREFECT_FILE.read_text())
    edit(content)
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def _dev(content: dict[str, Any]) -> dict[str, Any]:
    (dev,) = [d for d in content["deployments"] if d["name"] == "dev"]
    return dev


def test_the_shipped_files_resolve_to_three_deployments_on_the_process_pool(roots: None) -> None:
    checked = plan()
    assert [d.name for d in checked.deployments] == ["prod", "marketplaces", "dev"]
    dev = checked.deployments[2]
    assert dev.parameters == {"profile": "dev", "data_root": "/shared/dev", "sites": HOUSES}
    assert dev.schedules == [{"cron": "0 7 * * *", "timezone": "Europe/London"}]
    assert {d.work_pool for d in checked.deployments} == {"auction-pipeline"}
    assert {d.heartbeat_seconds for d in checked.deployments} == {60}
    assert [a.trigger.within.total_seconds() for a in checked.automations] == [240]


def test_every_unset_variable_is_named_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ROOTS:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(DeploymentConfigError) as caught:
        load_prefect_file()
    message = str(caught.value)
    assert message.startswith(f"{PREFECT_FILE}: environment variable(s) not set: ")
    for where in ("prod", "marketplaces", "dev"):
        assert f"deployments[{where}].parameters.data_root needs AUCTION_PIPELINE_" in message
    assert "export each before deploying" in message


def test_only_the_chosen_deployments_need_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUCTION_PIPELINE_PROD_DATA_ROOT", raising=False)
    monkeypatch.setenv("AUCTION_PIPELINE_DEV_DATA_ROOT", "/shared/dev")
    (dev,) = load_prefect_file(names=["dev"])
    assert dev.parameters["data_root"] == "/shared/dev"
    with pytest.raises(DeploymentConfigError, match=r"no deployment named staging \(the file has"):
        load_prefect_file(names=["staging"])


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda c: _dev(c)["parameters"].update(profile="gpu"),
         r"deployments\[dev\]\.parameters\.profile: .*unknown profile 'gpu'"),
        (lambda c: _dev(c)["parameters"].update(data_root="${AUCTION_PIPELINE_DEV_ROOT:-data}"),
         r"uses \$\{VAR\}, which Prefect registers as written; write \{\{ \$VAR \}\}"),
        (lambda c: _dev(c)["parameters"].update(data_root="data/dev"),
         r"parameters.data_root: 'data/dev' is not an absolute path"),
        (lambda c: _dev(c)["schedules"][0].pop("timezone"),
         r"schedules\[0\]: `timezone` is missing; name the zone"),
        (lambda c: _dev(c)["schedules"][0].update(timezone="Europe/Londres"),
         r"schedules\[0\].timezone: unknown time zone 'Europe/Londres'"),
        (lambda c: _dev(c).pop("work_pool"), r"deployments\[dev\].work_pool: needs a `name`"),
        (lambda c: _dev(c).update(work_pool={"name": "auction-pipeline", "job_variables": {
            "env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "10"}}}),
         r"PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 10 is below Prefect's minimum of 30 s"),
        (lambda c: _dev(c).update(work_pool={"name": "auction-pipeline", "job_variables": {
            "env": {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "often"}}}),
         r"PREFECT_FLOWS_HEARTBEAT_FREQUENCY: expected whole seconds"),
        (lambda c: _dev(c).pop("entrypoint"), r"deployments\[dev\]: `entrypoint` is missing"),
    ],
    ids=["profile", "old-syntax", "relative-root", "no-zone", "bad-zone", "no-pool",
         "heartbeat-short", "heartbeat-text", "no-entrypoint"],
)  # fmt: skip
def test_bad_deployments_are_refused_naming_file_and_field(
    roots: None, tmp_path: Path, edit: Callable[[dict[str, Any]], None], expected: str
) -> None:
    path = _edited(tmp_path, edit)
    with pytest.raises(DeploymentConfigError) as caught:
        load_prefect_file(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert re.search(expected, str(caught.value)), str(caught.value)


def test_a_crash_window_not_longer_than_the_heartbeat_is_refused(
    roots: None, tmp_path: Path
) -> None:
    content = yaml.safe_load(AUTOMATIONS_FILE.read_text())
    content["automations"][0]["trigger"]["within"] = 60
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(DeploymentConfigError) as caught:
        check_windows(load_automations(path), load_prefect_file(), path)
    assert str(caught.value) == (
        f"{path}: automation 'auction-pipeline: crash runs that stop heartbeating' crashes runs "
        "after 60 s without a heartbeat, but deployment 'prod' heartbeats every 60 s; make "
        "`within` a few heartbeats long"
    )
    content["automations"][0]["trigger"]["within"] = 61
    path.write_text(yaml.safe_dump(content))
    check_windows(load_automations(path), load_prefect_file(), path)  # longer: accepted


def test_an_invalid_automation_is_refused_as_prefect_would(tmp_path: Path) -> None:
    content = yaml.safe_load(AUTOMATIONS_FILE.read_text())
    content["automations"][0]["trigger"]["posture"] = "Sometimes"
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises(DeploymentConfigError) as caught:
        load_automations(path)
    assert str(caught.value).startswith(
        f"{path}: automations[0] (auction-pipeline: crash runs that stop heartbeating): "
    )
    assert "posture" in str(caught.value)


def test_prefect_deploy_is_asked_for_all_or_for_the_chosen_names() -> None:
    everything = prefect_deploy_argv(PREFECT_FILE, None)
    assert everything[1:] == ["--no-prompt", "deploy", "--prefect-file", str(PREFECT_FILE), "--all"]
    chosen = prefect_deploy_argv(PREFECT_FILE, ["dev", "prod"])
    assert chosen[-4:] == ["--name", "dev", "--name", "prod"] and "--all" not in chosen


@pytest.mark.parametrize("bad", ["", "  ", "{{ $AUCTION_PIPELINE_DEV_DATA_ROOT }}"])
def test_a_run_given_an_unresolved_data_root_refuses_to_start(bad: str) -> None:
    with pytest.raises(ValueError, match="registered without the environment variable"):
        data_root_of(bad)
    assert data_root_of("/shared/dev") == Path("/shared/dev")


def test_the_flow_loaded_as_a_deployment_loads_it_can_be_sent_to_dask_workers(
    tmp_path: Path,
) -> None:
    """Prefect loads the entrypoint file as a module named ``daily``, which Dask workers
    cannot import; the flow (sent to them with each task's context) must pickle without it.
    A helper defined in flows/daily.py broke every deployment run this way."""
    import subprocess
    import sys

    from deployments.config import REPO_ROOT

    pickled = tmp_path / "flow.pkl"
    dump = (
        "import cloudpickle, sys; from prefect.flows import load_flow_from_entrypoint; "
        "flow = load_flow_from_entrypoint('flows/daily.py:daily_pipeline'); "
        "open(sys.argv[1], 'wb').write(cloudpickle.dumps(flow))"
    )
    made = subprocess.run(
        [sys.executable, "-c", dump, str(pickled)], cwd=REPO_ROOT, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    load = "import pickle, sys; print(pickle.loads(open(sys.argv[1], 'rb').read()).name)"
    loaded = subprocess.run(
        [sys.executable, "-c", load, str(pickled)], cwd=tmp_path, capture_output=True,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "daily-pipeline"
