"""Progress artifacts against a real Prefect server: created once, updated in place, throttled
(intermediate reports within the interval are not sent, the final one always is), and never
failing the work when the API is unreachable."""

from __future__ import annotations

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.progress import ProgressArtifact, artifact_key

pytestmark = [
    pytest.mark.prefect_server,
    # Outside a run the artifact is not attached to one; Prefect warns that this is deprecated.
    pytest.mark.filterwarnings("ignore:Artifact creation outside:FutureWarning"),
]


def _artifacts(api_url: str, key: str) -> list[dict[str, object]]:
    response = httpx.post(
        f"{api_url}/artifacts/filter", json={"artifacts": {"key": {"any_": [key]}}}, timeout=30
    )
    response.raise_for_status()
    return list(response.json())


def test_progress_is_one_artifact_updated_in_place_and_throttled(prefect_api_url: str) -> None:
    progress = ProgressArtifact("Scrape Hôtel Lumière!", "lot pages", interval=3600)
    assert progress.key == artifact_key("Scrape Hôtel Lumière!") == "scrape-h-tel-lumi-re"
    with temporary_settings(updates={PREFECT_API_URL: prefect_api_url}):
        progress.report(0, 40)  # the first report creates the artifact
        first = progress.artifact_id
        progress.report(20, 40)  # within the interval: not sent
        [artifact] = _artifacts(prefect_api_url, progress.key)
        assert artifact["id"] == str(first) and float(artifact["data"]) == 0.0  # type: ignore[arg-type]
        progress.report(40, 40)  # the end is always sent, to the same artifact
    [artifact] = _artifacts(prefect_api_url, progress.key)
    assert progress.artifact_id == first
    assert artifact["type"] == "progress" and float(artifact["data"]) == 100.0  # type: ignore[arg-type]
    assert artifact["description"] == "lot pages"


def test_unreachable_api_does_not_fail_the_work(caplog: pytest.LogCaptureFixture) -> None:
    progress = ProgressArtifact("scrape-x", "lot pages", interval=0)
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        progress.report(1, 2)
        progress.report(2, 2)  # not retried after a failure: the work must not wait on it
    assert progress.artifact_id is None
    warnings = [r for r in caplog.records if "not reported to the Prefect API" in r.message]
    assert len(warnings) == 1 and "scrape-x" in warnings[0].message
