"""Capture verification end to end through the CLI, on the sandbox: the simulated floor places
calls (recordings on the Genesys org, CDRs on the topology's TradeSense servers) with planted
faults, and `recon verify` / `recon runtime` must find exactly those, honour triage tags, and
alert a gap within one poll interval plus the late-recording grace.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Recon, _recon_command
from test_cli_genesys import Org, ok
from test_cli_runtime import desk  # noqa: F401 (fixture)

QUEUES = "energy-desk-gas,energy-desk-power,energy-desk-carbon"
EXEMPT = ("T-1003", "L8")  # the energy example's exemption: TUR-1003's hoot line


def period() -> tuple[str, str]:
    today = dt.datetime.now(dt.UTC).date()
    return (today - dt.timedelta(days=1)).isoformat(), today.isoformat()


def place_floor(recon: Recon, root: Path, *extra: str) -> list[dict[str, Any]]:
    """Floor calls that all ended 10 minutes ago (past the example's 5-minute grace), 5 s apart
    (so two calls of one trader never start within the 2 s start tolerance); the ledger."""
    ok(recon("sandbox", "up", cwd=root))
    placed = ok(
        recon(
            "sandbox", "floor", "--queues", QUEUES, "--count", "90", "--rate", "0.2", "--ago", "10m", *extra, cwd=root
        )
    )
    assert "TradeSense servers ldn-collector-a" in placed.stdout, placed.stdout
    return list(Org(root).get("/api/v2/sandbox/floor", calls="true")["ledger"])


def planted(ledger: list[dict[str, Any]]) -> dict[str, set[str]]:
    """What the report must list, from the floor's ledger: finding keys per verdict."""
    found: dict[str, set[str]] = {
        "not_recorded": set(),
        "exempt": set(),
        "partial": set(),
        "recorded_without_cdr": set(),
    }
    for call in ledger:
        if call["outcome"] == "missing":
            exempt = (call["traderId"], call["line"]) == EXEMPT
            found["exempt" if exempt else "not_recorded"].add(call["cdrId"])
        elif call["outcome"] == "partial":
            found["partial"].add(call["cdrId"])
        elif call["outcome"] == "orphan":
            found["recorded_without_cdr"].add(call["recordingId"])
    return found


def findings(report: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {"not_recorded": set(), "exempt": set(), "partial": set(), "recorded_without_cdr": set()}
    for finding in report["findings"]:
        ident = finding["recordingId"] if finding["verdict"] == "recorded_without_cdr" else finding["cdrId"]
        out.setdefault(finding["verdict"], set()).add(ident)
    return out


def test_verify_finds_exactly_the_planted_gaps_in_every_format(recon: Recon, desk: Path) -> None:  # noqa: F811
    ledger = place_floor(
        recon, desk, "--missing-rate", "0.08", "--partial-rate", "0.06", "--orphan-rate", "0.06", "--seed", "5"
    )
    expected = planted(ledger)
    assert expected["not_recorded"] and expected["partial"] and expected["recorded_without_cdr"], expected
    first, last = period()
    result = recon("verify", "--from", first, "--to", last, "--format", "json", cwd=desk)
    assert result.returncode == 3, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert findings(report) == expected
    covered = [c for c in ledger if c["outcome"] != "uncovered"]
    reported = [c for c in covered if c["outcome"] != "orphan"]
    assert report["total"]["counts"]["verified"] == sum(1 for c in reported if c["outcome"] == "good")
    assert report["total"]["calls"] == len(reported)
    assert {d["name"] for d in report["desks"]} <= {"energy-desk-gas", "energy-desk-power", "energy-desk-carbon"}
    assert report["sources"] == [
        {"collector": "ldn-collector-a", "ok": True, "cdrs": len(reported), "detail": "polled up to date"}
    ]
    # The other formats, written to files; a second run resumes from the stored cursors.
    for fmt, marker in (("markdown", "| Desk |"), ("html", "<svg"), ("csv", "key,severity,verdict")):
        out = desk / f"report.{fmt}"
        again = recon("verify", "--from", first, "--to", last, "--format", fmt, "-o", str(out), cwd=desk)
        assert again.returncode == 3, again.stderr
        text = out.read_text()
        assert marker in text, text[:400]
        for cdr_id in expected["not_recorded"]:
            assert cdr_id in text
    text = ok_or(recon("verify", "--from", first, "--to", last, cwd=desk), 3).stdout
    assert "not_recorded" in text and "energy-desk-" in text


def ok_or(result: subprocess.CompletedProcess[str], code: int) -> subprocess.CompletedProcess[str]:
    assert result.returncode == code, result.stdout + result.stderr
    return result


def test_triage_tags_are_honoured_by_later_reports(recon: Recon, desk: Path) -> None:  # noqa: F811
    ledger = place_floor(
        recon, desk, "--missing-rate", "0.05", "--partial-rate", "0.05", "--orphan-rate", "0.05", "--seed", "9"
    )
    expected = planted(ledger)
    first, last = period()
    before = json.loads(ok_or(recon("verify", "--from", first, "--to", last, "--format", "json", cwd=desk), 3).stdout)
    tags = {"not_recorded": "test-call", "partial": "false-positive", "recorded_without_cdr": "missing-cdr"}
    for finding in before["findings"]:
        if finding["verdict"] in tags:
            ok(
                recon(
                    "triage", "set", finding["key"], "--tag", tags[finding["verdict"]],
                    "--note", "reviewed with the desk head", "--by", "reviewer@acme.example", cwd=desk,
                )
            )  # fmt: skip
    after = json.loads(ok_or(recon("verify", "--from", first, "--to", last, "--format", "json", cwd=desk), 0).stdout)
    excluded = len(expected["not_recorded"]) + len(expected["partial"])
    assert after["total"]["counts"]["triaged"] == excluded, "test calls and false positives leave compliance"
    assert after["total"]["counts"]["recorded_without_cdr"] == len(expected["recorded_without_cdr"]), "confirmed"
    assert after["total"]["compliance"] == 1.0 and after["total"]["meetsTarget"] is True
    assert all(f["triage"] for f in after["findings"] if f["verdict"] in tags)
    listed = json.loads(ok(recon("triage", "list", "--format", "json", cwd=desk)).stdout)
    assert {entry["reviewer"] for entry in listed} == {"reviewer@acme.example"}
    refused = recon("triage", "set", "pending:x", "--tag", "test-call", "--note", "n", "--by", "me", cwd=desk)
    assert refused.returncode == 1, refused.stderr


class Receiver:
    """A webhook on loopback that keeps (arrival time, JSON body) of every POST."""

    def __init__(self) -> None:
        self.posts: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                posts.put((time.time(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/T000/B000/SECRETxyz"

    def drain(self) -> list[tuple[float, dict[str, Any]]]:
        out = []
        while not self.posts.empty():
            out.append(self.posts.get_nowait())
        return out

    def wait_for(self, kind: str, timeout: float) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                arrived, body = self.posts.get(timeout=left)
            except queue.Empty:
                break
            if body["recon"]["kind"] == kind:
                return arrived, body
        raise AssertionError(f"no {kind} alert within {timeout} s")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def test_runtime_once_alerts_each_gap_to_the_webhook(recon: Recon, desk: Path, receiver: Receiver) -> None:  # noqa: F811
    ledger = place_floor(recon, desk, "--missing-rate", "0.08", "--partial-rate", "0.06", "--seed", "5")
    expected = planted(ledger)
    result = recon("runtime", "--once", "--since", "1m", "--alert-webhook", receiver.url, cwd=desk)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "capture verification (bt-trading-london)" in result.stdout
    gaps = [body["recon"] for _, body in receiver.drain() if body["recon"]["kind"] == "capture_gap"]
    assert {g["key"] for g in gaps} == {f"not_recorded:{c}" for c in expected["not_recorded"]} | {
        f"partial:{c}" for c in expected["partial"]
    }
    assert {g["severity"] for g in gaps} == {"critical", "major"}
    assert all(g["detail"]["triage"].startswith("recon triage set ") for g in gaps)
    assert "SECRETxyz" not in result.stdout + result.stderr, "the webhook URL is a secret"


def test_a_live_gap_is_alerted_within_one_poll_interval_plus_the_grace(
    recon: Recon,
    desk: Path,  # noqa: F811
    receiver: Receiver,
) -> None:
    collectors = desk / "collectors.yaml"
    text = collectors.read_text().replace("pollInterval: 10s", "pollInterval: 1s")
    collectors.write_text(text.replace("lateRecordingGrace: 5m", "lateRecordingGrace: 2s"))
    grace_s, interval_s = 2.0, 1.0
    ok(recon("sandbox", "up", cwd=desk))
    process = subprocess.Popen(
        [*_recon_command(), "runtime", "--duration", "40s", "--no-heads", "--alert-webhook", receiver.url],
        cwd=desk,
        env={**os.environ, "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # ends at EOF: the process exits after --duration at the latest
            if '"intake ready"' in line:
                break
        services = json.loads((desk / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]
        ended = time.time()
        start = dt.datetime.fromtimestamp(ended - 3.0, dt.UTC).isoformat(timespec="milliseconds")
        cdr = {"traderId": "T-1001", "startTime": start.replace("+00:00", "Z"), "durationMs": 3000, "line": "L1"}
        answer = httpx.post(f"{services['tradesense']['serversUrl']}/ldn-collector-a/cdrs", json={"cdrs": [cdr]})
        answer.raise_for_status()
        (cdr_id,) = answer.json()["cdrIds"]
        arrived, body = receiver.wait_for("capture_gap", timeout=30)
        latency = arrived - ended
        assert body["recon"]["key"] == f"not_recorded:{cdr_id}"
        # One poll interval plus the grace, and one check interval: the verifier's loop; plus
        # 1.5 s for the platform query and delivery on a loaded CI machine.
        assert latency <= grace_s + 2 * interval_s + 1.5, f"alerted {latency:.2f} s after the call ended"
        assert latency >= grace_s, "alerted before the grace was over"
    finally:
        process.kill()
        process.communicate()


def test_an_ha_pair_serving_different_cdrs_is_named_in_the_report(recon: Recon, desk: Path) -> None:  # noqa: F811
    ok(recon("sandbox", "up", cwd=desk))
    first, last = period()
    empty = recon("verify", "--from", first, "--to", last, "--format", "json", cwd=desk)  # creates the servers
    assert empty.returncode == 0, empty.stdout + empty.stderr
    services = json.loads((desk / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]
    knobs = f"{services['tradesense']['serversUrl']}/ldn-collector-a/knobs"
    httpx.put(knobs, json={"haMismatchRate": 0.5, "seed": 3}).raise_for_status()
    ok(recon("sandbox", "floor", "--queues", QUEUES, "--count", "40", "--rate", "0.2", "--ago", "10m", cwd=desk))
    result = recon("verify", "--from", first, "--to", last, "--format", "json", cwd=desk)
    report = json.loads(result.stdout)
    (source,) = report["sources"]
    assert source["ok"] is False and source["detail"].startswith("ha_mismatch: "), source
    assert result.returncode in (2, 3), "an incomplete or misconfigured source is never a clean report"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("--from", "2026-11-02", "--to", "2026-11-01"), "--to is before --from", id="period-backwards"),
        pytest.param(("--from", "2026-11-01", "--to", "2026-11-02", "--topology", "nope"), "no CollectorTopology 'nope'",
                     id="unknown-topology"),
        pytest.param(("--from", "2026-13-01", "--to", "2026-11-02"), "2026-13-01", id="not-a-day"),
        pytest.param(("--from", "2026-11-01"), "--to", id="no-end-of-period"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_anything_is_read(
    recon: Recon,
    desk: Path,  # noqa: F811
    args: tuple[str, ...],
    message: str,
) -> None:
    result = recon("verify", *args, cwd=desk)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr, result.stderr
    assert not (desk / ".recon" / "runtime.db").exists(), "nothing is written on bad input"
