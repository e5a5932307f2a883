"""Issue 17, class 13: the sandbox keeps what it says it keeps.

The sandbox's S3 was in memory only: after `recon sandbox down && up` the archive (buckets,
object versions, Object Lock retention, legal holds, bucket configuration) and the evidence
heads in it were gone. End to end through the CLI: apply the example's archive, export
recordings into it, stamp calls (heads published), put a legal hold on a version, then
`recon sandbox down` and `up`: the same versions with the same ids, retention and holds are
there, `recon plan` sees no change, `recon verify-archive` and `recon evidence verify --heads`
still pass. And the state file is trusted only when this machine's sandbox wrote it (a pickle
is code): a forged or foreign file is set aside and never loaded; a kill -9 loses at most the
last second of writes.

Each test points XDG_STATE_HOME (where the state file's MAC key lives) at its own folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import EXAMPLES, _recon_command

BUCKET = "acme-trading-recordings-eu"


def _run(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_recon_command(), *args],
        cwd=root,
        env={**os.environ, "NO_COLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def _s3_entry(root: Path) -> dict[str, Any]:
    return dict(json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]["s3"])


def _client(root: Path) -> Any:
    entry = _s3_entry(root)
    return boto3.client(
        "s3",
        endpoint_url=entry["url"],
        region_name=entry["region"],
        aws_access_key_id=entry["accessKeyId"],
        aws_secret_access_key=entry["secretAccessKey"],
    )


def _archive(client: Any) -> dict[tuple[str, str], tuple[Any, ...]]:
    """Every version in the bucket: (key, version id) -> (etag, lock mode, retain until, hold)."""
    seen: dict[tuple[str, str], tuple[Any, ...]] = {}
    for page in client.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for version in page.get("Versions", []):
            head = client.head_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])
            seen[(version["Key"], version["VersionId"])] = (
                head["ETag"],
                head.get("ObjectLockMode"),
                head.get("ObjectLockRetainUntilDate"),
                head.get("ObjectLockLegalHoldStatus"),
            )
    return seen


@pytest.fixture
def desk(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "desk"
    shutil.copytree(EXAMPLES / "energy-desk-eu", root)
    return root, {"XDG_STATE_HOME": str(tmp_path / "xdg")}


def test_the_archive_and_the_heads_survive_down_and_up(desk: tuple[Path, dict[str, str]]) -> None:
    root, env = desk
    _ok(_run(root, env, "apply", "--auto-approve"))
    today = dt.datetime.now(dt.UTC)
    period = ("--from", (today.date() - dt.timedelta(days=45)).isoformat(), "--to", today.date().isoformat())
    from test_cli_genesys import Org  # noqa: PLC0415

    start = (today - dt.timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    Org(root).post(
        "/api/v2/sandbox/conversations",
        {"queue": "energy-desk-gas", "users": ["lena.berg@acme.example"], "startTime": start, "count": 2},
    )
    stamped = _ok(_run(root, env, "runtime", "--once", "--since", "10m"))
    assert "published to the archive bucket" in stamped.stdout
    _ok(_run(root, env, "sandbox", "export", "--bucket", BUCKET, *period))
    archive_before = _ok(_run(root, env, "verify-archive", *period)).stdout
    client = _client(root)
    held_key = client.list_objects_v2(Bucket=BUCKET)["Contents"][0]["Key"]
    held_version = client.head_object(Bucket=BUCKET, Key=held_key)["VersionId"]
    client.put_object_legal_hold(Bucket=BUCKET, Key=held_key, VersionId=held_version, LegalHold={"Status": "ON"})
    before = _archive(client)
    assert before[(held_key, held_version)][3] == "ON"
    assert any(mode == "COMPLIANCE" for _, mode, _, _ in before.values()), "the bucket's default retention applies"
    heads_before = _ok(_run(root, env, "evidence", "verify", "--heads")).stdout
    assert "published heads checked" in heads_before

    assert "stopped" in _ok(_run(root, env, "sandbox", "down")).stdout
    _ok(_run(root, env, "sandbox", "up"))
    assert _s3_entry(root)["restored"] is True and "stateProblem" not in _s3_entry(root)

    client = _client(root)
    assert _archive(client) == before, "every version, with the same id, retention and legal hold"
    with pytest.raises(client.exceptions.ClientError):
        client.delete_object(Bucket=BUCKET, Key=held_key, VersionId=held_version)
    plan = _run(root, env, "plan")
    assert plan.returncode == 0, "the bucket's configuration came back: nothing to change\n" + plan.stdout
    assert _ok(_run(root, env, "verify-archive", *period)).stdout == archive_before
    heads_after = _ok(_run(root, env, "evidence", "verify", "--heads")).stdout
    assert heads_after == heads_before


def _serve(directory: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler.sandbox", "serve", "--dir", str(directory)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoints = directory / "endpoints.json"
    for _ in range(600):
        if endpoints.exists() and json.loads(endpoints.read_text()).get("pid") == process.pid:
            return process
        assert process.poll() is None, "the daemon exited while starting"
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the daemon did not start")


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    process.send_signal(sig)
    process.wait(timeout=30)


def _bucket_names(directory: Path) -> list[str]:
    entry = json.loads((directory / "endpoints.json").read_text())["services"]["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=entry["url"],
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    return sorted(bucket["Name"] for bucket in client.list_buckets()["Buckets"])


def _make_bucket(directory: Path, name: str) -> None:
    entry = json.loads((directory / "endpoints.json").read_text())["services"]["s3"]
    boto3.client(
        "s3",
        endpoint_url=entry["url"],
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


def test_a_kill_9_keeps_what_was_written_a_second_earlier(tmp_path: Path) -> None:
    directory, env = tmp_path / "sandbox", {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    daemon = _serve(directory, env)
    try:
        _make_bucket(directory, "written-before-the-kill")
        state = directory / "s3-state.pickle"
        for _ in range(200):  # saved within a second of the write; bounded wait for the file
            if state.exists() and b"written-before-the-kill" in state.read_bytes():
                break
            time.sleep(0.05)
    finally:
        _stop(daemon, signal.SIGKILL)
    (directory / "endpoints.json").unlink()
    daemon = _serve(directory, env)
    try:
        assert _bucket_names(directory) == ["written-before-the-kill"]
    finally:
        _stop(daemon)


FORGERIES = [
    pytest.param(lambda good: b"recon-sandbox-s3 v1\n" + b"\0" * 32 + good[52:], id="a-forged-mac"),
    pytest.param(lambda good: good[:-10], id="a-torn-file"),
    pytest.param(lambda good: pickle.dumps({"not": "a state"}), id="a-bare-pickle"),
    pytest.param(lambda good: b"", id="an-empty-file"),
]


@pytest.mark.parametrize("forge", FORGERIES)
def test_a_state_file_this_machine_did_not_write_is_never_loaded(tmp_path: Path, forge: Any) -> None:
    directory, env = tmp_path / "sandbox", {"XDG_STATE_HOME": str(tmp_path / "xdg")}
    daemon = _serve(directory, env)
    try:
        _make_bucket(directory, "kept-bucket")
    finally:
        _stop(daemon)
    state = directory / "s3-state.pickle"
    state.write_bytes(forge(state.read_bytes()))
    daemon = _serve(directory, env)
    try:
        entry = json.loads((directory / "endpoints.json").read_text())["services"]["s3"]
        assert "the S3 started empty" in entry["stateProblem"] and entry["restored"] is False
        assert _bucket_names(directory) == []
        assert (directory / "s3-state.pickle.rejected").exists(), "kept for inspection"
    finally:
        _stop(daemon)


def test_a_valid_mac_does_not_make_any_pickle_loadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defence in depth: even a correctly authenticated file may only name moto's classes."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    from reconciler.sandbox import s3_state  # noqa: PLC0415

    key = s3_state.state_key()
    path = tmp_path / "s3-state.pickle"
    s3_state.write(path, pickle.dumps([("s3", "1", "aws", os.system)]), key)
    with pytest.raises(s3_state.StateProblem, match="cannot be read"):
        s3_state.restore(path, key)
    assert (tmp_path / "xdg" / "recon" / "sandbox-state.key").stat().st_mode & 0o077 == 0, "the key is private"
