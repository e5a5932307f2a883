"""End to end through the `recon` console script with `state: {backend: s3}`: the state
lives in a real moto S3 server on loopback, the estate in a Genesys sandbox server.

- A named target whose `aws.endpointUrl` is the moto server (credentials from
  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) and whose `genesys.apiUrl` is an in-process
  Genesys sandbox: apply, then plan shows no changes, and `state list/show` read from S3.
- The lock: while another process holds the state's lock, `recon apply` waits for its
  --lock-timeout and fails naming the holder (exit 1), force-unlock needs the right id,
  and once released the apply goes through.
- The `sandbox` target: the state goes to the sandbox daemon's own moto S3, its bucket
  created (versioned) on first use.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from conftest import _recon_command
from moto.server import ThreadedMotoServer
from test_cli_genesys import PROJECT

from reconciler.sandbox.genesys_server import GenesysSandbox
from reconciler.state import LockInfo, S3Backend
from reconciler.state.lock import process_start

KEY = "desks/energy/state.json"
ADDRESSES = ["ArchiveBucket/trading-archive-eu", "Queue/energy-desk-gas", "RecordingPolicy/gas-voice"]
"""What the named target manages of the project: its genesys: org and its aws: account."""

MANIFESTS = {name: PROJECT[name] for name in ("retention.yaml", "recording.yaml", "archive.yaml")} | {
    "queues.yaml": PROJECT["queues.yaml"].split("---")[0]
}
"""The Genesys tests' project without its hold and second queue: one queue, one policy, the archive."""

Result = subprocess.CompletedProcess[str]


def output(result: Result) -> str:
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    kms = boto3.client(
        "kms", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    key = kms.create_key(Description="the archive's customer key")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/trading-recordings", TargetKeyId=key)
    yield url
    server.stop()
    quiet.setLevel(level)


@pytest.fixture
def genesys_url(tmp_path: Path) -> Iterator[str]:
    server = GenesysSandbox(tmp_path / "org.json")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials the way a pipeline passes them: environment variables (recon never
    writes them anywhere); no profile, no instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("GENESYS_SECRET", "sandbox-secret")
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def s3_client(url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


class Project:
    """A project folder and `recon` run inside it."""

    def __init__(self, root: Path, bucket: str, moto_url: str | None) -> None:
        self.root = root
        self.bucket = bucket
        self.moto_url = moto_url

    def __call__(self, *args: str) -> Result:
        return subprocess.run(
            [*_recon_command(), *args],
            cwd=self.root,
            env={**os.environ, "NO_COLOR": "1"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.returncode == 0, output(result)
        return result

    def backend(self) -> S3Backend:
        assert self.moto_url is not None
        return S3Backend(self.bucket, KEY, s3_client(self.moto_url))


def write_project(root: Path, recon_yaml: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "recon.yaml").write_text(recon_yaml, encoding="utf-8")
    for name, text in MANIFESTS.items():
        (root / name).write_text(text, encoding="utf-8")


@pytest.fixture
def desk(tmp_path: Path, moto_url: str, genesys_url: str, aws_env: None) -> Project:
    bucket = f"recon-state-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(moto_url)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    write_project(
        tmp_path / "desk",
        "target: desk\n"
        "targets:\n"
        "  desk:\n"
        "    genesys: {region: eu-west-1, clientId: recon-sandbox, clientSecret: env:GENESYS_SECRET, "
        f"apiUrl: '{genesys_url}'}}\n"
        f"    aws: {{region: eu-west-1, endpointUrl: '{moto_url}'}}\n"
        f"state: {{backend: s3, bucket: {bucket}, key: {KEY}}}\n",
    )
    return Project(tmp_path / "desk", bucket, moto_url)


def test_apply_then_plan_and_state_read_from_s3(desk: Project) -> None:
    applied = desk.ok("apply", "--auto-approve")
    assert f"{len(ADDRESSES)} succeeded" in applied.stdout and "0 failed" in applied.stdout, output(applied)
    assert not (desk.root / ".recon" / "state.json").exists(), "nothing local"

    state = desk.backend().read()
    assert sorted(state.resources) == ADDRESSES
    assert all(r.pending is None and r.id for r in state.resources.values())
    assert desk.backend().current_lock() is None, "released"

    plan = desk("plan", "--detailed-exitcode")
    assert plan.returncode == 0, output(plan)
    assert "No changes" in plan.stdout, plan.stdout

    listed = desk.ok("state", "list")
    assert f"# state s3://{desk.bucket}/{KEY}: lineage {state.lineage}, serial {state.serial}" in listed.stdout
    for address in ADDRESSES:
        assert f"{address}  id={state.resources[address].id}  ok" in listed.stdout
    shown = json.loads(desk.ok("state", "show", "Queue/energy-desk-gas").stdout)
    assert shown["id"] == state.resources["Queue/energy-desk-gas"].id

    again = desk.ok("apply", "--auto-approve")
    assert desk.backend().read().serial == state.serial, f"nothing to do, nothing recorded: {output(again)}"


def test_a_held_lock_makes_apply_wait_then_fail_naming_the_holder(desk: Project) -> None:
    with desk.backend().lock("apply", timeout=0) as holding:  # another apply, in this live process
        info = holding.lock
        blocked = desk("apply", "--auto-approve", "--lock-timeout", "1s")
        assert blocked.returncode == 1, output(blocked)
        for detail in (
            f"state s3://{desk.bucket}/{KEY} is locked by {info.owner}@{info.host} (pid {os.getpid()})",
            f"for apply since {info.created}; lock ID {info.id}",
            f"recon force-unlock {info.id}",
        ):
            assert detail in blocked.stderr, blocked.stderr
        assert desk.backend().current_lock() == info, "the holder's lock is untouched"
    assert desk.backend().read().resources == {}, "the blocked apply recorded nothing"
    assert f"{len(ADDRESSES)} succeeded" in desk.ok("apply", "--auto-approve").stdout


def test_force_unlock_removes_only_the_named_lock(desk: Project) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        now = dt.datetime.now(dt.UTC)
        info = LockInfo(
            id=str(uuid.uuid4()),
            owner="alice.trader",
            host=socket.gethostname(),
            pid=holder.pid,
            operation="apply",
            created=now.isoformat(timespec="seconds"),
            expires=(now + dt.timedelta(hours=1)).isoformat(timespec="seconds"),
            fence=1,
            pid_started=process_start(holder.pid) or "",
        )
        assert desk.moto_url is not None
        s3_client(desk.moto_url).put_object(
            Bucket=desk.bucket, Key=KEY + ".lock", Body=json.dumps(info.to_json()).encode()
        )
        blocked = desk("apply", "--auto-approve")
        assert blocked.returncode == 1 and f"alice.trader@{info.host} (pid {holder.pid})" in blocked.stderr

        wrong = desk("force-unlock", "WRONGID")
        assert wrong.returncode == 1 and "does not match" in wrong.stderr and info.id in wrong.stderr
        assert desk.backend().current_lock() == info

        unlocked = desk.ok("force-unlock", info.id)
        assert f"Removed lock {info.id} held by alice.trader@{info.host} (pid {holder.pid}) for apply" in (
            unlocked.stdout
        )
        assert desk.backend().current_lock() is None
        twice = desk("force-unlock", info.id)
        assert twice.returncode == 1 and "is not locked" in twice.stderr
    finally:
        holder.terminate()
        holder.wait(timeout=10)


def test_a_missing_state_bucket_is_named(desk: Project) -> None:
    text = (desk.root / "recon.yaml").read_text(encoding="utf-8").replace(desk.bucket, "no-such-state-bucket")
    (desk.root / "recon.yaml").write_text(text, encoding="utf-8")
    result = desk("plan")
    assert result.returncode == 1, output(result)
    assert "the state bucket no-such-state-bucket does not exist" in result.stderr
    assert "put-bucket-versioning" in result.stderr and "Traceback" not in output(result)


def test_the_sandbox_target_keeps_s3_state_in_the_sandboxs_own_s3(tmp_path: Path, aws_env: None) -> None:
    root = tmp_path / "sandboxed"
    write_project(root, f"target: sandbox\nstate: {{backend: s3, bucket: sandbox-state, key: {KEY}}}\n")
    desk = Project(root, "sandbox-state", None)
    applied = desk.ok("apply", "--auto-approve")
    assert "0 failed" in applied.stdout, output(applied)
    listed = desk.ok("state", "list")
    assert listed.stdout.startswith(f"# state s3://sandbox-state/{KEY}: lineage "), listed.stdout
    assert "Queue/energy-desk-gas  id=" in listed.stdout
    assert not (root / ".recon" / "state.json").exists()
    endpoints = json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text(encoding="utf-8"))
    s3 = s3_client(endpoints["services"]["s3"]["url"])
    assert s3.get_bucket_versioning(Bucket="sandbox-state")["Status"] == "Enabled"
    assert json.loads(s3.get_object(Bucket="sandbox-state", Key=KEY)["Body"].read())["resources"]


def test_two_concurrent_applies_one_proceeds_the_other_waits_then_names_it(desk: Project, genesys_url: str) -> None:
    """Two real `recon apply` processes: the platform is slowed (2 s per Genesys request)
    so the first holds the S3 lock for seconds; the second starts once the lock object exists,
    waits its --lock-timeout and fails naming the first's pid; the first completes."""
    token = httpx.post(
        f"{genesys_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("recon-sandbox", "sandbox-secret"),
    ).json()["access_token"]
    httpx.put(
        f"{genesys_url}/api/v2/sandbox/faults", json={"latencyMs": 2000}, headers={"Authorization": f"Bearer {token}"}
    ).raise_for_status()
    first = subprocess.Popen(
        [*_recon_command(), "apply", "--auto-approve"],
        cwd=desk.root,
        env={**os.environ, "NO_COLOR": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        holder = None
        deadline = time.monotonic() + 60
        while holder is None and first.poll() is None and time.monotonic() < deadline:
            holder = desk.backend().current_lock()  # each read is a round trip: the loop is the wait
        assert holder is not None and holder.pid == first.pid, "the first apply took the lock"
        second = desk("apply", "--auto-approve", "--lock-timeout", "1s")
        assert first.poll() is None, "the first apply still held the lock while the second gave up"
        assert second.returncode == 1, output(second)
        assert f"(pid {first.pid})" in second.stderr and "for apply since" in second.stderr, second.stderr
        out, err = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, out + err
    assert f"{len(ADDRESSES)} succeeded" in out
    assert desk.backend().current_lock() is None
    assert sorted(desk.backend().read().resources) == ADDRESSES
