"""`recon runtime --once` end to end on the sandbox target: calls that just happened on the
energy desk's queues are stamped with the sandbox market-data server's prices (attached to
the call as participant data), recorded in the evidence log (which verifies), never stamped
twice; with the feed failing, the calls get `null` and data_fetch_failed (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EXAMPLES, Recon, _recon_command
from test_cli_genesys import Org, ok


@pytest.fixture
def desk(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    shutil.copytree(EXAMPLES / "energy-desk-eu", root)
    return root


def calls_just_now(recon: Recon, root: Path, count: int) -> tuple[Org, list[str]]:
    ok(recon("sandbox", "up", cwd=root))
    org = Org(root)
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=count + 30)).isoformat().replace("+00:00", "Z")
    made = org.post(
        "/api/v2/sandbox/conversations",
        {"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"], "startTime": start, "count": count},
    )
    return org, list(made["conversations"])


def attributes(org: Org, conversation: str) -> dict[str, Any]:
    customer: dict[str, Any] = org.get(f"/api/v2/conversations/calls/{conversation}")["participants"][0]
    return dict(customer["attributes"])


def test_recent_calls_are_stamped_once_and_evidenced(recon: Recon, desk: Path) -> None:
    org, made = calls_just_now(recon, desk, 3)
    first = recon("runtime", "--once", "--since", "10m", cwd=desk)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "attached, 0 data_fetch_failed" in first.stdout
    assert '"alert": "heads_not_published"' in first.stderr, "no archive bucket yet (not applied): alerted, not fatal"
    for conversation in made:
        stamped = attributes(org, conversation)
        assert stamped["market_snapshot_status"] == "attached"
        snapshot = json.loads(stamped["market_snapshot"])
        assert {"timestamp_utc", "source_provider", "commodity", "currency_pair"} <= set(snapshot)
        assert isinstance(snapshot["commodity"], float)
    logs = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    assert {entry["conversationId"] for entry in logs if entry["message"] == "call stamped"} >= set(made)
    again = ok(recon("runtime", "--once", "--since", "10m", cwd=desk))
    assert again.stdout.startswith("0 call(s) stamped"), "a call is stamped once"
    verified = ok(recon("evidence", "verify", cwd=desk))
    assert "intact" in verified.stdout


@pytest.mark.parametrize("writer", ["inline", "process"], ids=["writes-on-the-loop", "writes-in-a-child-process"])
def test_either_platform_writer_stamps_the_calls(recon: Recon, desk: Path, writer: str) -> None:
    org, made = calls_just_now(recon, desk, 2)
    result = ok(recon("runtime", "--once", "--since", "10m", "--platform-writer", writer, cwd=desk))
    assert "2 call(s) stamped: 2 attached" in result.stdout
    assert all(attributes(org, conversation)["market_snapshot_status"] == "attached" for conversation in made)
    assert "s3cret" not in result.stderr


def test_an_unknown_platform_writer_is_a_usage_error(recon: Recon, desk: Path) -> None:
    result = recon("runtime", "--once", "--platform-writer", "thread", cwd=desk)
    assert result.returncode == 1
    assert "'thread' is not one of 'process', 'inline'" in result.stderr
    assert not (desk / ".recon" / "runtime.db").exists(), "nothing was started or written"


def test_a_failing_feed_records_data_fetch_failed_and_exits_2(recon: Recon, desk: Path) -> None:
    org, made = calls_just_now(recon, desk, 2)
    services = json.loads((desk / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]
    httpx.put(services["marketdata"]["knobsUrl"], json={"failureRate": 1.0}).raise_for_status()
    result = recon("runtime", "--once", "--since", "10m", cwd=desk)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "0 attached" in result.stdout
    for conversation in made:
        assert attributes(org, conversation) == {
            "market_snapshot": "null",
            "market_snapshot_status": "data_fetch_failed",
        }
    assert '"alert": "data_fetch_failed"' in result.stderr
    assert ok(recon("evidence", "verify", cwd=desk)).returncode == 0


def test_live_mode_stamps_a_call_as_it_starts(recon: Recon, desk: Path) -> None:
    """`recon runtime --duration`: once the intake is subscribed (its "intake ready" log line),
    a call that starts is stamped from its notification, not from a later query."""
    ok(recon("sandbox", "up", cwd=desk))
    org = Org(desk)
    process = subprocess.Popen(
        [*_recon_command(), "runtime", "--duration", "8s"],
        cwd=desk,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines: list[str] = []
        for line in process.stderr:  # ends at EOF: the process exits after --duration at the latest
            lines.append(line)
            if '"intake ready"' in line:
                break
        assert any('"intake ready"' in line for line in lines), "".join(lines)
        (conversation,) = org.post(
            "/api/v2/sandbox/conversations", {"queue": "energy-desk-power", "users": ["lena.berg@acme.example"]}
        )["conversations"]
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, out + err
    assert out.startswith("1 call(s) stamped: 1 attached"), out
    assert attributes(org, conversation)["market_snapshot_status"] == "attached"
    stamped = [json.loads(line) for line in err.splitlines() if '"call stamped"' in line]
    assert [entry["conversationId"] for entry in stamped] == [conversation]
