"""Bounded configuration loading and input checks (issue 12: defect 5 and its minor items).

Hostile or mistyped configuration must fail fast with one line naming the file and the field:
an alias bomb, an oversized file, duplicate keys, a URL without a host, a zero memory size,
booleans given as strings, dates that are not YYYY-MM-DD or absurdly far from today, a data
root that cannot be written, and a full disk while a file is replaced.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import tmpfs

import flows.run
from deployments.automations import AUTOMATIONS_FILE, load_automations
from deployments.config import PREFECT_FILE, DeploymentConfigError, load_prefect_file
from flows.cli import build_parser, main
from infra.atomic import write_atomic
from infra.profiles import DEFAULT_PROFILES_FILE, ProfileError, load_profile
from infra.yamlfiles import MAX_CONFIG_BYTES, MAX_CONFIG_NODES
from sites.loader import SITES_DIR, SiteDefinitionError, load_site_file

HARROW = (SITES_DIR / "harrow-finch.yaml").read_text(encoding="utf-8")
DEPLOYMENTS = PREFECT_FILE.read_text(encoding="utf-8")
TODAY = date.today().isoformat()

# Nine levels of ten aliases each: 10**9 strings once expanded, from a file of 1 kB.
BILLION_LAUGHS = 'a0: &a0 "lol"\n' + "".join(
    f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)
)


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt of ``run`` to start or reach a Prefect server fails the test at once."""

    def refuse(**_: Any) -> Any:
        raise AssertionError("the run got as far as starting a Prefect server")

    monkeypatch.setattr(flows.run, "prefect_api", refuse)


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``auction-pipeline argv`` in this process: its exit code and its stderr."""
    sigterm = signal.getsignal(signal.SIGTERM)  # main() installs its own handler
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = int(exc.code or 0)
    finally:
        signal.signal(signal.SIGTERM, sigterm)
    return code, capsys.readouterr().err


def _site_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "harrow-finch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# --- defect 5: bounded YAML -------------------------------------------------------------


@pytest.mark.timeout(10)
def test_an_alias_bomb_in_a_site_file_fails_fast_naming_the_file(tmp_path: Path) -> None:
    path = _site_file(tmp_path, HARROW + BILLION_LAUGHS)
    with pytest.raises(SiteDefinitionError) as caught:
        load_site_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert f"more than the {MAX_CONFIG_NODES} nodes" in message
    assert "aliases" in message


@pytest.mark.timeout(20)
@pytest.mark.parametrize("command", ["sites", "run"])
def test_an_alias_bomb_stops_sites_check_and_run_with_exit_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_server: None,
    command: str,
) -> None:
    path = _site_file(tmp_path, HARROW + BILLION_LAUGHS)
    monkeypatch.setenv("AUCTION_PIPELINE_SITES_DIR", str(tmp_path))
    argv = {
        "sites": ["sites", "check", str(path)],
        "run": ["run", "--profile", "local", "--date", TODAY, "--site", "harrow-finch"],
    }[command]
    if command == "run":
        argv += ["--data-root", str(tmp_path / "data")]
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and str(path) in err and "aliases" in err
    assert not (tmp_path / "data").exists()


def test_a_site_file_with_ordinary_anchors_and_aliases_still_loads(tmp_path: Path) -> None:
    rules = (
        "  subtitle: &rule\n    selector: {css: h2}\n    required: false\n"
        "  caption: *rule\n"
        "  alt_caption:\n    <<: *rule\n    min_fill_rate: 0.5\n"
        "  images:"
    )
    site = load_site_file(_site_file(tmp_path, HARROW.replace("  images:", rules)))
    assert site.fields["caption"] == site.fields["subtitle"]
    assert site.fields["caption"].selector.css == "h2"
    assert site.fields["alt_caption"].selector.css == "h2"
    assert site.fields["alt_caption"].min_fill_rate == 0.5
    assert site.fields["images"].many is True


@pytest.mark.parametrize("kind", ["site", "profiles", "deployments", "automations"])
def test_an_oversized_configuration_file_is_refused_naming_file_and_limit(
    tmp_path: Path, kind: str
) -> None:
    base = {
        "site": HARROW,
        "profiles": DEFAULT_PROFILES_FILE.read_text(encoding="utf-8"),
        "deployments": DEPLOYMENTS,
        "automations": AUTOMATIONS_FILE.read_text(encoding="utf-8"),
    }[kind]
    padding = "# padding to look like a generated file\n" * (MAX_CONFIG_BYTES // 40 + 1)
    path = _site_file(tmp_path, base + padding)
    loaders: dict[str, Callable[[], object]] = {
        "site": lambda: load_site_file(path),
        "profiles": lambda: load_profile("local", path=path, environ={}),
        "deployments": lambda: load_prefect_file(path),
        "automations": lambda: load_automations(path),
    }
    with pytest.raises((SiteDefinitionError, ProfileError, DeploymentConfigError)) as caught:
        loaders[kind]()
    message = str(caught.value)
    assert str(path) in message
    assert f"more than the {MAX_CONFIG_BYTES} bytes allowed" in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (
            DEFAULT_PROFILES_FILE.read_text(encoding="utf-8")
            + "\n  dev:\n    kind: slurm\n    partition: other\n",
            "dev",
        ),
        ("profiles:\n  local:\n    kind: local\n    workers: 2\n    workers: 8\n", "workers"),
    ],
    ids=["profile-twice", "key-twice"],
)
def test_duplicate_keys_in_a_profiles_file_are_refused(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile("local", path=path, environ={})
    assert str(path) in str(caught.value)
    assert f"duplicate key {key!r}" in str(caught.value)


def test_duplicate_keys_in_a_deployments_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "prefect.yaml"
    path.write_text(DEPLOYMENTS + "build: other\n", encoding="utf-8")
    with pytest.raises(DeploymentConfigError, match=f"{path}: .*duplicate key 'build'"):
        load_prefect_file(path)


def test_a_self_referencing_alias_is_refused(tmp_path: Path) -> None:
    path = _site_file(tmp_path, HARROW + "loop: &loop [*loop]\n")
    with pytest.raises(SiteDefinitionError, match=f"{path}: .*refers to itself"):
        load_site_file(path)


# --- minor items: values ----------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://", "https:///harrow", "http://:8080/x"])
def test_a_base_url_without_a_host_is_refused(tmp_path: Path, url: str) -> None:
    text = HARROW.replace("${DEMO_SITE_URL:-http://127.0.0.1:8765}/harrow-finch", url)
    with pytest.raises(SiteDefinitionError) as caught:
        load_site_file(_site_file(tmp_path, text))
    assert str(caught.value).startswith(f"{tmp_path / 'harrow-finch.yaml'}: base_url: ")
    assert f"{url!r} has no host" in str(caught.value)


@pytest.mark.parametrize("memory", ["0GiB", "0B", "0.0MB", "-1GiB"])
def test_a_zero_or_negative_memory_size_is_refused_naming_the_key(
    tmp_path: Path, memory: str
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(f"profiles:\n  local:\n    kind: local\n    memory: {memory}\n", "utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile("local", path=path, environ={})
    assert f"profile 'local' in {path}: memory: " in str(caught.value)
    assert repr(memory) in str(caught.value)


def test_a_zero_memory_override_names_its_variable() -> None:
    with pytest.raises(ProfileError, match=r"memory \(set by AUCTION_PIPELINE__DEV__MEMORY\)"):
        load_profile("dev", environ={"AUCTION_PIPELINE__DEV__MEMORY": "0GiB"})


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("required: true  ", 'required: "yes"', "fields.lot_number.required"),
        ("required: true  ", "required: 1", "fields.lot_number.required"),
        ("many: true ", 'many: "true"', "fields.images.many"),
    ],
)
def test_booleans_in_a_site_file_must_be_yaml_booleans(
    tmp_path: Path, old: str, new: str, where: str
) -> None:
    text = HARROW.replace(old, new, 1)
    assert text != HARROW
    with pytest.raises(SiteDefinitionError) as caught:
        load_site_file(_site_file(tmp_path, text))
    assert f"{where}: Input should be a valid boolean" in str(caught.value)


# --- minor items: command-line input ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["20260314", "2026-W11-6", "2026-03-14T00:00", "9999-12-31", "1989-12-31"],
)
def test_only_plausible_yyyy_mm_dd_dates_are_accepted(
    capsys: pytest.CaptureFixture[str], text: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["run", "--profile", "local", "--date", text])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"invalid date {text!r}: expected YYYY-MM-DD" in err


def test_dates_from_1990_to_a_year_ahead_are_accepted() -> None:
    for day in (date(1990, 1, 1), date.today(), date.today() + timedelta(days=365)):
        args = build_parser().parse_args(["run", "--profile", "local", "--date", day.isoformat()])
        assert args.date == day


def test_a_data_root_that_is_a_file_is_refused_before_the_run_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    root = tmp_path / "data"
    root.write_text("not a directory\n")
    argv = ["run", "--profile", "local", "--date", TODAY, "--data-root", str(root)]
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert err == f"auction-pipeline: error: data root {root} is a file, not a directory; " + (
        "give a directory (it is created when missing)\n"
    )
    assert root.read_text() == "not a directory\n"


def test_a_data_root_below_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None
) -> None:
    (tmp_path / "file").write_text("x")
    root = tmp_path / "file" / "data"
    argv = ["run", "--profile", "local", "--date", TODAY, "--data-root", str(root)]
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert f"data root {root} cannot be created: {tmp_path / 'file'} is a file" in err


@pytest.mark.parametrize("below", [False, True], ids=["root-itself", "root-to-create"])
def test_a_read_only_data_root_is_refused_before_the_run_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_server: None, below: bool
) -> None:
    with tmpfs(tmp_path / "ro", "ro") as mount:
        root = mount / "data" if below else mount
        argv = ["run", "--profile", "local", "--date", TODAY, "--data-root", str(root)]
        code, err = run_cli(argv, capsys)
        assert code == 2, err
        assert err.count("\n") == 1
        assert f"data root {root}" in err and f"{mount} is not writable (read-only" in err


def test_an_empty_data_root_is_refused(capsys: pytest.CaptureFixture[str], no_server: None) -> None:
    argv = ["run", "--profile", "local", "--date", TODAY, "--data-root", ""]
    code, err = run_cli(argv, capsys)
    assert code == 2, err
    assert "argument --data-root: an empty path" in err


def test_an_empty_data_root_is_refused_from_python(no_server: None) -> None:
    with pytest.raises(flows.run.UsageError, match="data root '' is empty"):
        flows.run.run_pipeline("local", date.today(), None, "")


# --- minor items: a full disk -----------------------------------------------------------


def test_a_full_disk_names_the_file_and_keeps_its_earlier_version(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "small") as mount:
        path = mount / "processed" / "harrow-finch.jsonl"
        write_atomic(path, b"earlier version\n")
        with pytest.raises(OSError) as caught:
            write_atomic(path, b"x" * (256 * 1024))
        assert caught.value.errno == errno.ENOSPC
        assert f"cannot write {path}: No space left on device" in str(caught.value)
        assert path.read_bytes() == b"earlier version\n"
        assert sorted(os.listdir(path.parent)) == ["harrow-finch.jsonl"]


@pytest.mark.parametrize(
    ("start_url", "named"),
    [
        ("/auctions/{dat}", "placeholder(s) {dat}; the only one is {date}"),
        ("/auctions/{date", "expected '}' before end of string"),
        ("/auctions/{date.year}", "placeholder(s) {date.year}"),
    ],
)
def test_a_listing_url_with_an_unknown_placeholder_is_refused_when_loaded(
    tmp_path: Path, start_url: str, named: str
) -> None:
    """Before, "{dat}" loaded fine and failed at the first crawl with a bare KeyError."""
    data = yaml.safe_load((SITES_DIR / "harrow-finch.yaml").read_text())
    data["start_url"] = start_url
    path = tmp_path / "harrow-finch.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SiteDefinitionError) as refused:
        load_site_file(path)
    assert "start_url" in str(refused.value) and named in str(refused.value)
