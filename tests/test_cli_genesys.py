"""End to end through the CLI against the embedded Genesys sandbox (a real HTTP server on
loopback, started on demand by the first command): every Genesys mapping, drift
attribution from the audit log, 429 storms and 5xx bursts, and each error class."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EXAMPLES, Recon

PROJECT = {
    "recon.yaml": "target: sandbox\nstate: {backend: local, path: .recon/state.json}\n",
    "retention.yaml": """apiVersion: recon/v1
kind: RetentionPolicy
metadata: {name: seven-years}
spec: {retain: 7y, archiveAfter: 30d}
""",
    "recording.yaml": """apiVersion: recon/v1
kind: RecordingPolicy
metadata: {name: gas-voice}
spec:
  regimes: [mifid2]
  record: {inbound: always, outbound: always, internal: always, ivrNavigation: true}
  retention: seven-years
  archive: trading-archive-eu
  encryptionKey: alias/trading-recordings
  metadataKeys: [market_snapshot, consent]
""",
    "archive.yaml": (EXAMPLES / "energy-desk-eu" / "archive.yaml").read_text(encoding="utf-8"),
    "queues.yaml": """apiVersion: recon/v1
kind: Queue
metadata: {name: energy-desk-gas}
spec: {regulated: true, recordingPolicy: gas-voice, region: eu-west-1, clientRegion: EU}
---
apiVersion: recon/v1
kind: Queue
metadata: {name: energy-desk-lng}
spec: {regulated: true, recordingPolicy: gas-voice, region: eu-west-1, clientRegion: EU, description: LNG cargoes}
""",
    "holds.yaml": """apiVersion: recon/v1
kind: LegalHold
metadata: {name: matter-1}
spec:
  matter: FCA enquiry 1
  scope: {users: [ahmed.khan@acme.example], from: 2025-09-01}
  autoExtend: true
""",
}


class Org:
    """The project's sandbox org, read through the real API (token from endpoints.json)."""

    def __init__(self, root: Path) -> None:
        services = json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]["genesys"]
        self.url = services["url"]
        token = httpx.post(
            f"{self.url}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(services["clientId"], services["clientSecret"]),
        ).json()["access_token"]
        self.http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        response = self.http.post(path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def named(self, collection: str, name: str) -> dict[str, Any]:
        path = {"queues": "/api/v2/routing/queues", "policies": "/api/v2/recording/mediaretentionpolicies"}[collection]
        found = [e for e in self.get(path, pageSize=100, name=name)["entities"] if e["name"] == name]
        assert len(found) == 1, found
        return found[0]

    def protected(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for i in range(0, len(ids), 100):
            out |= {
                p["id"]
                for p in self.post("/api/v2/recordings/deletionprotection", {"conversationIds": ids[i : i + 100]})
            }
        return out

    def faults(self, **knobs: Any) -> None:
        self.http.put("/api/v2/sandbox/faults", json=knobs).raise_for_status()

    def requests(self) -> int:
        return sum(self.get("/api/v2/sandbox/health")["requests"].values())


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "desk"
    root.mkdir()
    for name, text in PROJECT.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def plan_json(recon: Recon, root: Path, *args: str) -> dict[str, Any]:
    result = recon("plan", "--format", "json", *args, cwd=root)
    assert result.returncode in (0, 3), result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def entry(plan: dict[str, Any], address: str) -> dict[str, Any]:
    return next(c for c in plan["resource_changes"] if c["address"] == address)


def test_every_mapping_lands_on_the_platform_and_a_second_plan_is_empty(recon: Recon, project: Path) -> None:
    plan = plan_json(recon, project)
    actions = {c["address"]: (c["action"], c["adopt"]) for c in plan["resource_changes"]}
    assert actions == {
        "Queue/energy-desk-gas": ("no-op", True),
        "Queue/energy-desk-lng": ("create", False),
        "RecordingPolicy/gas-voice": ("create", False),
        "LegalHold/matter-1": ("create", False),
        "ArchiveBucket/trading-archive-eu": ("create", False),
    }, "RetentionPolicy has no object of its own on Genesys; the seeded queue is adopted"
    held = entry(plan, "LegalHold/matter-1")["change"]["after"]["conversations"]
    assert held, "the seed has calls by ahmed.khan since 2025-09"
    ok(recon("apply", "--auto-approve", cwd=project))
    org = Org(project)
    policy = org.named("policies", "gas-voice")
    call = policy["mediaPolicies"]["callPolicy"]
    queue_ids = {org.named("queues", q)["id"] for q in ("energy-desk-gas", "energy-desk-lng")}
    assert {q["id"] for q in call["conditions"]["forQueues"]} == queue_ids
    assert call["actions"]["retentionDuration"] == {
        "archiveRetention": {"days": 30, "storageMedium": "CLOUDARCHIVE"},
        "deleteRetention": {"days": 2557},
    }
    lng = org.named("queues", "energy-desk-lng")
    assert lng["suppressInQueueCallRecording"] is False and lng["description"] == "LNG cargoes"
    assert org.protected(held) == set(held)
    before = org.requests()
    again = ok(recon("plan", "--detailed-exitcode", "-v", cwd=project))
    assert "No changes" in again.stdout
    counted = int(again.stderr.split("(Genesys Cloud ")[1].split(",")[0])
    assert counted == org.requests() - before, "--verbose reports exactly the requests the Genesys server saw"
    assert counted <= 8, f"one list pass per collection, not one GET per resource ({counted})"


def test_console_edit_is_drift_named_with_who_and_when_and_apply_keeps_unmanaged_fields(
    recon: Recon, project: Path
) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    ok(
        recon(
            "sandbox", "mutate", "queues", "energy-desk-gas",
            "--set", "suppressInQueueCallRecording=true", "--set", "enableTranscription=true",
            "--by", "jane.doe@acme.example", cwd=project,
        )
    )  # fmt: skip
    drift = recon("drift", cwd=project)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "Queue/energy-desk-gas" in drift.stdout and "by jane.doe@acme.example at 20" in drift.stdout
    assert "via admin-console" in drift.stdout and "suppressInQueueCallRecording: false -> true" in drift.stdout
    assert "enableTranscription" not in drift.stdout, "recon does not manage it, so it is not drift"
    ok(recon("apply", "--auto-approve", cwd=project))
    queue = Org(project).named("queues", "energy-desk-gas")
    assert queue["suppressInQueueCallRecording"] is False, "a regulated queue never suppresses in-queue recording"
    assert queue["enableTranscription"] is True, "read-modify-write kept the console's field"
    assert ok(recon("drift", cwd=project)).returncode == 0


def test_queue_order_on_the_platform_is_not_a_diff(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    org = Org(project)
    policy = org.named("policies", "gas-voice")
    media = policy["mediaPolicies"]
    media["callPolicy"]["conditions"]["forQueues"].reverse()
    ok(recon("sandbox", "mutate", "policies", "gas-voice", "--set", f"mediaPolicies={json.dumps(media)}", cwd=project))
    assert ok(recon("drift", cwd=project)).returncode == 0


def test_a_rename_is_an_update_of_the_same_policy(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    old_id = Org(project).named("policies", "gas-voice")["id"]
    for name in ("recording.yaml", "queues.yaml"):
        path = project / name
        path.write_text(path.read_text().replace("gas-voice", "gas-and-lng-voice"))
    recording = project / "recording.yaml"
    recording.write_text(
        recording.read_text().replace(
            "{name: gas-and-lng-voice}", "{name: gas-and-lng-voice, renamedFrom: [gas-voice]}"
        )
    )
    plan = plan_json(recon, project)
    change = entry(plan, "RecordingPolicy/gas-and-lng-voice")
    assert (
        change["action"] == "update" and change["moved_from"] == "RecordingPolicy/gas-voice" and change["id"] == old_id
    )
    assert all(c["address"] != "RecordingPolicy/gas-voice" for c in plan["resource_changes"])
    ok(recon("apply", "--auto-approve", cwd=project))
    assert Org(project).named("policies", "gas-and-lng-voice")["id"] == old_id
    assert "RecordingPolicy/gas-voice" not in ok(recon("state", "list", cwd=project)).stdout
    assert "No changes" in ok(recon("plan", cwd=project)).stdout


def test_auto_extend_holds_new_calls_and_a_release_lets_go_only_with_approval(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    org = Org(project)
    new = org.post("/api/v2/sandbox/conversations", {"queue": "energy-desk-gas", "users": ["ahmed.khan@acme.example"]})
    plan = plan_json(recon, project)
    change = entry(plan, "LegalHold/matter-1")
    assert change["action"] == "update" and set(new["conversations"]) <= set(change["change"]["after"]["conversations"])
    ok(recon("apply", "--auto-approve", cwd=project))
    held = json.loads(ok(recon("state", "show", "LegalHold/matter-1", cwd=project)).stdout)["attributes"][
        "conversations"
    ]
    assert org.protected(held) == set(held)
    holds = project / "holds.yaml"
    holds.write_text(holds.read_text() + "  release: {approvedBy: gc@acme.example, reason: closed}\n")
    assert recon("plan", cwd=project).returncode == 3, "a release without a ticket is forbidden"
    holds.write_text(holds.read_text().replace("reason: closed}", "reason: closed, ticket: LGL-1}"))
    refused = recon("apply", "--auto-approve", cwd=project)
    assert refused.returncode == 1 and "one-way" in refused.stderr
    assert org.protected(held) == set(held), "nothing was released"
    ok(recon("apply", "--auto-approve", "--allow-one-way", cwd=project))
    assert org.protected(held) == set()


def test_holds_over_the_org_protection_limit_are_refused_before_apply(recon: Recon, project: Path) -> None:
    ok(recon("apply", "--auto-approve", cwd=project))
    org = Org(project)
    new = org.post(
        "/api/v2/sandbox/conversations",
        {"queue": "energy-desk-power", "users": ["lena.berg@acme.example"], "count": 1001},
    )
    holds = project / "holds.yaml"
    holds.write_text(
        holds.read_text()
        + "---\napiVersion: recon/v1\nkind: LegalHold\nmetadata: {name: matter-2}\n"
        + "spec: {matter: big, scope: {users: [lena.berg@acme.example], from: 2026-11-01}}\n"
    )
    before = org.requests()
    result = recon("plan", cwd=project)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "allows 1000 per org" in result.stdout
    assert recon("apply", "--auto-approve", cwd=project).returncode == 3
    assert org.requests() > before  # it did read the platform
    assert org.protected(new["conversations"]) == set(), "the refused apply protected nothing"


@pytest.mark.parametrize(
    ("knobs", "expected"),
    [
        pytest.param({"rate429": 0.3}, "429 storm", id="429-storm-converges"),
        pytest.param({"rate5xx": 0.3}, "5xx burst", id="5xx-burst-converges"),
    ],
)
def test_apply_converges_through_throttling_and_server_errors(
    recon: Recon, project: Path, knobs: dict[str, float], expected: str
) -> None:
    ok(recon("sandbox", "up", cwd=project))
    org = Org(project)
    org.faults(**knobs)
    result = ok(recon("apply", "--auto-approve", cwd=project))
    assert "0 failed" in result.stdout, expected
    org.faults(rate429=0.0, rate5xx=0.0)
    assert "No changes" in ok(recon("plan", cwd=project)).stdout


@pytest.mark.parametrize(
    ("knobs", "message"),
    [
        pytest.param(
            {"denyPermissions": ["recording:retentionPolicy:view"]},
            "missing permission recording:retentionPolicy:view",
            id="403-names-the-missing-permission",
        ),
        pytest.param(
            {"malformed": {"/api/v2/routing/queues": "json"}},
            "GET /api/v2/routing/queues",
            id="malformed-json-names-the-endpoint",
        ),
        pytest.param(
            {"malformed": {"/api/v2/routing/queues": "missing-field"}},
            "'entities'",
            id="missing-field-names-the-field",
        ),
    ],
)
def test_platform_errors_exit_1_with_what_to_do(
    recon: Recon, project: Path, knobs: dict[str, Any], message: str
) -> None:
    ok(recon("sandbox", "up", cwd=project))
    Org(project).faults(**knobs)
    result = recon("plan", cwd=project)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "next:" in result.stderr


def test_rejected_credentials_say_so_and_never_print_the_secret(recon: Recon, project: Path) -> None:
    ok(recon("sandbox", "up", cwd=project))
    url = Org(project).url
    (project / "recon.yaml").write_text(
        "target: org\ntargets:\n  org:\n    genesys: {region: eu-west-1, clientId: recon-sandbox, "
        f"clientSecret: env:GENESYS_SECRET, apiUrl: '{url}'}}\n"
    )
    result = recon("plan", cwd=project, env={"GENESYS_SECRET": "wrong-secret-value"})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rejected" in result.stderr and "wrong-secret-value" not in result.stdout + result.stderr
    missing = recon("plan", cwd=project, env={"GENESYS_SECRET": ""})
    assert missing.returncode == 1 and "GENESYS_SECRET" in missing.stderr
    good = ok(recon("plan", cwd=project, env={"GENESYS_SECRET": "sandbox-secret"}))
    assert "gas-voice" in good.stdout
