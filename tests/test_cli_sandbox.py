"""`recon sandbox up|status|down|reset|mutate` end to end: the daemon really starts detached,
serves Genesys (and S3 when moto is installed) on loopback, keeps its org across restarts,
and is always stopped again (the `project` fixture calls `down` whatever happens, so no
daemon outlives a test).

The first test drives the real console script in subprocesses, as a user does; the others
invoke the same click commands in-process (CliRunner) to keep the file fast. The daemon is
a real detached process either way.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from conftest import Recon

from reconciler.cli import cli
from reconciler.sandbox import process

SANDBOX = Path(".recon") / "sandbox"
QUEUES = "/api/v2/routing/queues"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A project folder whose sandbox is stopped at the end, whatever the test did."""
    try:
        yield tmp_path
    finally:
        process.down(tmp_path / SANDBOX)


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


Sandbox = Callable[..., Ran]


@pytest.fixture
def sandbox(project: Path) -> Sandbox:
    """Run `recon sandbox ARGS... --project-dir PROJECT` in-process."""

    def run(*args: str) -> Ran:
        result = CliRunner().invoke(cli, ["sandbox", *args, "--project-dir", str(project)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


@pytest.fixture
def console(recon: Recon, project: Path) -> Sandbox:
    """Run `recon sandbox ARGS...` through the console script, in the project folder."""

    def run(*args: str) -> Ran:
        result = recon("sandbox", *args, cwd=project)
        return Ran(result.returncode, result.stdout, result.stderr)

    return run


def status_json(sandbox: Sandbox) -> dict[str, Any]:
    result = sandbox("status", "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def login(genesys: dict[str, Any]) -> httpx.Client:
    """An API client for the sandbox, logged in with the credentials `status` lists."""
    basic = base64.b64encode(f"{genesys['clientId']}:{genesys['clientSecret']}".encode()).decode()
    answer = httpx.post(
        f"{genesys['loginUrl']}/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "bearer"
    return httpx.Client(base_url=genesys["url"], headers={"Authorization": f"Bearer {answer.json()['access_token']}"})


def queue_names(genesys: dict[str, Any]) -> set[str]:
    with login(genesys) as api:
        page = api.get(QUEUES, params={"pageSize": 500})
    assert page.status_code == 200, page.text
    return {queue["name"] for queue in page.json()["entities"]}


def check_s3(s3: dict[str, Any]) -> None:
    """The S3 emulator takes the listed credentials and keeps a bucket."""
    boto3 = pytest.importorskip("boto3")
    client = boto3.client(
        "s3",
        endpoint_url=s3["url"],
        aws_access_key_id=s3["accessKeyId"],
        aws_secret_access_key=s3["secretAccessKey"],
        region_name=s3["region"],
    )
    client.create_bucket(Bucket="trading-archive-eu", CreateBucketConfiguration={"LocationConstraint": s3["region"]})
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["trading-archive-eu"]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_up_status_idempotent_up_down(console: Sandbox, project: Path) -> None:
    started = console("up")
    assert started.returncode == 0, started.stdout + started.stderr
    assert "sandbox: running" in started.stdout
    assert str(project / SANDBOX) in started.stdout
    assert "recon sandbox down" in started.stdout

    shown = status_json(console)
    assert shown["running"] is True
    assert shown["dir"] == str((project / SANDBOX).resolve())
    services = shown["services"]
    genesys = services["genesys"]
    assert genesys["url"].startswith("http://127.0.0.1:")
    assert (genesys["clientId"], genesys["clientSecret"], genesys["region"]) == (
        "recon-sandbox",
        "sandbox-secret",
        "sandbox",
    )
    assert queue_names(genesys)  # the seeded floor answers with the listed credentials
    tradesense = services["tradesense"]
    assert tradesense["url"].startswith("http://127.0.0.1:") and tradesense["wsBase"].startswith("ws://127.0.0.1:")
    assert httpx.get(tradesense["serversUrl"]).json() is not None, "the TradeSense control API answers"
    assert services["marketdata"]["url"].startswith("http://127.0.0.1:")
    if "url" in services["s3"]:
        check_s3(services["s3"])
    else:
        assert services["s3"]["status"] == "unavailable"

    table = console("status")
    assert table.returncode == 0
    assert genesys["url"] in table.stdout
    assert "client secret sandbox-secret" in table.stdout

    again = console("up")
    assert again.returncode == 0
    assert f"already running (pid {shown['pid']})" in again.stdout  # the same daemon

    stopped = console("down")
    assert (stopped.returncode, stopped.stdout.strip()) == (0, "sandbox: stopped")
    assert status_json(console) == {
        "running": False,
        "pid": None,
        "dir": str((project / SANDBOX).resolve()),
        "services": {},
    }
    assert not (project / SANDBOX / "endpoints.json").exists()
    once_more = console("down")
    assert (once_more.returncode, once_more.stdout.strip()) == (0, "sandbox: was not running")


def running_genesys(root: Path) -> dict[str, Any]:
    """The Genesys entry of the running daemon's endpoints.json (read directly: quicker)."""
    genesys: dict[str, Any] = json.loads((root / SANDBOX / "endpoints.json").read_text())["services"]["genesys"]
    return genesys


def test_genesys_org_persists_across_restart_and_reset_reseeds(sandbox: Sandbox, project: Path) -> None:
    assert sandbox("up").returncode == 0
    genesys = running_genesys(project)
    seeded = queue_names(genesys)
    with login(genesys) as api:
        created = api.post(QUEUES, json={"name": "energy-desk-hydrogen"})
    assert created.status_code == 200, created.text
    assert sandbox("down").returncode == 0

    assert sandbox("up").returncode == 0
    genesys = running_genesys(project)
    assert queue_names(genesys) == seeded | {"energy-desk-hydrogen"}

    reset = sandbox("reset")
    assert reset.returncode == 0, reset.stderr
    assert "genesys.json" in reset.stdout
    assert sorted(p.name for p in (project / SANDBOX).iterdir()) == [".daemon.lock", "sandbox.log"]  # log kept
    assert sandbox("up").returncode == 0
    assert queue_names(running_genesys(project)) == seeded


def test_status_lists_the_market_data_server_and_its_dialects(sandbox: Sandbox) -> None:
    assert sandbox("up").returncode == 0
    marketdata = status_json(sandbox)["services"]["marketdata"]
    url = marketdata["url"]
    assert marketdata["dialects"] == {
        "generic-rest": f"{url}/generic/snapshot",
        "bloomberg": f"{url}/bloomberg/refdata",
        "refinitiv": f"{url}/refinitiv/data/pricing/snapshots/v1/",
    }
    snapshot = httpx.get(
        marketdata["dialects"]["generic-rest"],
        params={"symbols": "EUR/USD,RDSa.L", "fields": "exchange_rate"},
        headers={"Authorization": f"Bearer {marketdata['token']}"},
    )
    assert snapshot.status_code == 200, snapshot.text
    assert set(snapshot.json()["data"]) == {"EUR/USD", "RDSa.L"}
    form = {"grant_type": "client_credentials", "client_id": marketdata["clientId"]}
    token = httpx.post(marketdata["tokenUrl"], data={**form, "client_secret": marketdata["clientSecret"]})
    assert token.status_code == 200, token.text
    refinitiv = httpx.get(
        marketdata["dialects"]["refinitiv"],
        params={"universe": "TTF", "fields": "BID"},
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    )
    assert refinitiv.json()["data"][0][0] == "TTF"
    table = sandbox("status").stdout
    assert f"marketdata  {url}" in table
    assert f"bearer token {marketdata['token']}" in table
    assert marketdata["dialects"]["bloomberg"] in table


def write_endpoints(root: Path, pid: int, url: str = "http://127.0.0.1:9") -> Path:
    path = root / SANDBOX / "endpoints.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    genesys = {"url": url, "loginUrl": url, "clientId": "recon-sandbox", "clientSecret": "sandbox-secret"}
    path.write_text(json.dumps({"pid": pid, "started": "2026-11-21T00:00:00Z", "services": {"genesys": genesys}}))
    return path


def test_stale_endpoints_file_of_a_dead_daemon_is_detected_and_removed(sandbox: Sandbox, project: Path) -> None:
    path = write_endpoints(project, dead_pid())
    shown = sandbox("status")
    assert shown.returncode == 0
    assert "not running" in shown.stdout
    assert "stale endpoints.json" in shown.stdout
    assert not path.exists()
    assert sandbox("down").stdout.strip() == "sandbox: was not running"


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to tell a recycled pid")
def test_a_recycled_pid_is_not_taken_for_the_daemon_nor_signalled(sandbox: Sandbox, project: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        write_endpoints(project, bystander.pid)
        assert status_json(sandbox)["running"] is False
        write_endpoints(project, bystander.pid)
        assert sandbox("down").stdout.strip() == "sandbox: was not running"
        assert bystander.poll() is None  # still alive: never sent SIGTERM
    finally:
        bystander.kill()
        bystander.wait()


def test_a_daemon_that_crashes_on_start_fails_up_with_its_log(sandbox: Sandbox, project: Path) -> None:
    (project / SANDBOX / "genesys.json").mkdir(parents=True)  # unreadable org state
    failed = sandbox("up")
    assert failed.returncode == 1
    assert "the sandbox daemon exited with code" in failed.stderr
    assert "genesys.json" in failed.stderr  # the log tail names the cause
    assert "next: " in failed.stderr
    assert not (project / SANDBOX / "endpoints.json").exists()
    assert status_json(sandbox)["running"] is False


def test_up_in_a_folder_that_is_a_file_fails(sandbox: Sandbox, project: Path) -> None:
    (project / ".recon").write_text("not a folder")
    failed = sandbox("up")
    assert failed.returncode == 1
    assert "cannot use" in failed.stderr
    assert "next: " in failed.stderr


def test_mutate_changes_an_object_as_the_named_user(sandbox: Sandbox, project: Path) -> None:
    assert sandbox("up").returncode == 0
    genesys = running_genesys(project)
    name = sorted(queue_names(genesys))[0]
    changed = sandbox(
        "mutate",
        "queues",
        name,
        "--set",
        "description=edited by hand",
        "--set",
        "enableTranscription=true",
        "--by",
        "bob@acme.example",
    )
    assert changed.returncode == 0, changed.stderr
    assert f"changed queues {name!r} as bob@acme.example" in changed.stdout
    with login(genesys) as api:
        [queue] = api.get(QUEUES, params={"name": name}).json()["entities"]
    assert (queue["description"], queue["enableTranscription"]) == ("edited by hand", True)
    assert queue["modifiedBy"] == "bob@acme.example"

    missing = sandbox("mutate", "queues", "no-such-queue", "--set", "description=x")
    assert missing.returncode == 1
    assert "HTTP 404" in missing.stderr
    assert "next: " in missing.stderr


def test_mutate_errors_say_what_to_do(sandbox: Sandbox, project: Path) -> None:
    not_running = sandbox("mutate", "queues", "energy-desk-gas", "--set", "a=1")
    assert not_running.returncode == 1
    assert "not running" in not_running.stderr
    assert "recon sandbox up" in not_running.stderr
    malformed = sandbox("mutate", "queues", "energy-desk-gas", "--set", "no-equals")
    assert malformed.returncode == 1
    assert "KEY=VALUE" in malformed.stderr


def test_concurrent_ups_share_one_daemon(project: Path) -> None:
    directory = project / SANDBOX
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: process.up(directory), range(2))
    assert first.pid == second.pid
    assert process.status(directory).pid == first.pid


def test_reset_deletes_only_inside_the_sandbox_folder(sandbox: Sandbox, project: Path, tmp_path_factory: Any) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "keep.json").write_text("{}")
    directory = project / SANDBOX
    directory.mkdir(parents=True)
    (directory / "genesys.json").write_text("{}")
    (directory / "linked").symlink_to(outside, target_is_directory=True)
    reset = sandbox("reset")
    assert reset.returncode == 0, reset.stderr
    assert sorted(p.name for p in directory.iterdir()) == []
    assert (outside / "keep.json").is_file()
