"""End to end through the `recon` console script against the embedded sandbox: plan, apply,
show, drift, state, import, export and force-unlock, with their exit codes and output.

Every test works on its own copy of manifests/examples/energy-desk-eu (12 manifests, a
jinja2 template) in a temporary folder. The "live platform" has two parts, both under
`<project>/.recon/sandbox/`:

- the Genesys kinds (Queue, RecordingPolicy, LegalHold) live in the sandbox's
  Genesys-Cloud-compatible server, a daemon the first command that needs it starts (stopped
  after each test by conftest). Tests read its persisted org (genesys.json) to look at it and
  change it with `recon sandbox mutate`, the way a person would in the admin console. Its
  seed already has the desk queues, so a first plan adopts them instead of creating them.
  RetentionPolicy has no object there: its days are folded into the RecordingPolicies.
- ArchiveBucket lives in the daemon's S3 (a moto server, in memory): tests look at it and
  change it by hand through boto3, as someone with console access would.
- MarketDataFeed and CollectorTopology live in the fake store (estate.json); tests open it
  in-process with `FakeStore.open` to look at it or to change it by hand.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from conftest import AS_OF, EXAMPLES, _recon_command

from reconciler.sandbox.process import ensure_running
from reconciler.state.local import LocalBackend
from reconciler.state.lock import LockInfo, process_start
from reconciler.state.model import State
from reconciler.testing import FakeStore

DESK = EXAMPLES / "energy-desk-eu"
ESTATE = Path(".recon") / "sandbox" / "estate.json"
ORG = Path(".recon") / "sandbox" / "genesys.json"
STATE = Path(".recon") / "state.json"
LOCK = Path(".recon") / "state.json.lock"

ARCHIVE = "ArchiveBucket/trading-archive-eu"
GAS = "Queue/energy-desk-gas"
FEED = "MarketDataFeed/gas-hub-prices"
HOLD = "LegalHold/matter-2026-017"
BUCKET = "acme-trading-recordings-eu"  # ArchiveBucket/trading-archive-eu, in the sandbox's S3
DESK_QUEUES = {GAS, "Queue/energy-desk-power", "Queue/energy-desk-carbon"}
"""Declared and already in the sandbox's seed: a first plan adopts them."""
ADDRESSES = sorted(
    [
        ARCHIVE,
        "CollectorTopology/bt-trading-london",
        HOLD,
        FEED,
        *DESK_QUEUES,
        "Queue/customer-service",
        "RecordingPolicy/mifid2-mandatory-voice",
        "RecordingPolicy/customer-service-voice",
    ]
)
"""What a plan of the example covers (its RetentionPolicies are folded into the RecordingPolicies)."""
JANE = "jane@bank.example"

Result = subprocess.CompletedProcess[str]


def output(result: Result) -> str:
    return result.stdout + result.stderr


class Desk:
    """A copy of the energy-desk-eu example and `recon` run inside it (stdin never a TTY)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
    ) -> Result:
        return subprocess.run(
            [*_recon_command(), *args],
            cwd=cwd or self.root,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def ok(self, *args: str, **kwargs: Any) -> Result:
        result = self(*args, **kwargs)
        assert result.returncode == 0, output(result)
        return result

    def apply(self) -> Result:
        result = self.ok("apply", "--auto-approve")
        assert "0 failed" in result.stdout, output(result)
        return result

    def edit(self, name: str, old: str, new: str) -> None:
        path = self.root / name
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{old!r} is not unique in {name}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    @property
    def store(self) -> FakeStore:
        return FakeStore.open(self.root / ESTATE)

    def live(self) -> dict[str, dict[str, Any]]:
        """The fake-store part of the platform now: kind → name → attributes (empty when
        nothing was ever written). The Genesys kinds are in `org()`."""
        return self.store.snapshot()

    def org(self) -> dict[str, Any]:
        """The sandbox's Genesys org as its daemon persisted it ({} before any command started it)."""
        path = self.root / ORG
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def genesys(self, collection: str) -> dict[str, dict[str, Any]]:
        """name → object of one Genesys collection ("queues", "policies"); fails on a duplicate name."""
        objects = list(self.org().get(collection, {}).values())
        by_name = {obj["name"]: obj for obj in objects}
        assert len(by_name) == len(objects), f"two {collection} share a name: {sorted(o['name'] for o in objects)}"
        return by_name

    def protected(self) -> set[str]:
        """Conversations protected from deletion: what a LegalHold is on Genesys (no hold object)."""
        return set(self.org().get("protected", []))

    def live_ids(self) -> dict[str, str]:
        """Address → id of every live object: the fake store's, and the org's queues and
        media retention policies (seeded ones included). A LegalHold has none: see protected()."""
        store = self.store
        ids = {f"{kind}/{name}": obj_id for kind in store.snapshot() for name, obj_id in store.ids(kind).items()}
        ids |= {f"Queue/{name}": queue["id"] for name, queue in self.genesys("queues").items()}
        ids |= {f"RecordingPolicy/{name}": policy["id"] for name, policy in self.genesys("policies").items()}
        if BUCKET in self.buckets():
            ids[ARCHIVE] = BUCKET
        return ids

    def s3(self) -> Any:
        """boto3 on the sandbox's S3 (the daemon must be running)."""
        entry = json.loads((self.root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]["s3"]
        return boto3.client(
            "s3",
            endpoint_url=entry["url"],
            region_name=entry["region"],
            aws_access_key_id=entry["accessKeyId"],
            aws_secret_access_key=entry["secretAccessKey"],
        )

    def buckets(self) -> set[str]:
        """The buckets in the sandbox's S3 (none when its daemon is not running: S3 lives in
        the daemon's memory)."""
        if not (self.root / ".recon" / "sandbox" / "endpoints.json").exists():
            return set()
        return {bucket["Name"] for bucket in self.s3().list_buckets()["Buckets"]}

    def retention(self) -> str:
        """The archive bucket's default retention as a manifest writes it (7y, 2555d)."""
        rule = self.s3().get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"]["Rule"]
        default = rule["DefaultRetention"]
        return f"{default['Years']}y" if default.get("Years") else f"{default['Days']}d"

    def untouched(self) -> bool:
        """Nothing was ever written to the platform: no fake-store object, no bucket, no
        audited write to the org (a person's or recon's), no protected conversation."""
        org = self.org()
        return (
            self.live() == {}
            and self.buckets() == set()
            and org.get("audit", []) == []
            and org.get("protected", []) == []
        )

    def mutate(self, collection: str, name: str, **changes: Any) -> None:
        """Someone changes a Genesys object in the admin console (`recon sandbox mutate`)."""
        sets = [arg for key, value in changes.items() for arg in ("--set", f"{key}={json.dumps(value)}")]
        self.ok("sandbox", "mutate", collection, name, *sets, "--by", JANE)

    def state(self) -> State:
        return LocalBackend(self.root / STATE).read()

    def recon_files(self) -> dict[str, bytes]:
        """recon's own files (state, journal, lock). The sandbox's folder is the platform's
        storage (its S3 is saved a moment after each write): `live()` covers it."""
        folder = self.root / ".recon"
        return {
            str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] != "sandbox"
        }


def copy_desk(root: Path) -> None:
    """The energy desk without its org-wide RecordingSettings: these tests count the creates
    and adopts of the desk's own resources; the settings (always adopted and updated) have
    their own tests in test_cli_recording_settings.py."""
    shutil.copytree(DESK, root, ignore=shutil.ignore_patterns("settings.yaml"))


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    root = tmp_path / "desk"
    copy_desk(root)
    return Desk(root)


def plan_digest(document: dict[str, Any]) -> str:
    """The digest of a plan document, computed as docs/plan-format.md says."""
    body = {key: value for key, value in document.items() if key != "digest"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def changes_by_address(plan_json: str) -> dict[str, dict[str, Any]]:
    return {change["address"]: change for change in json.loads(plan_json)["resource_changes"]}


def addresses(document: dict[str, Any], action: str | None = None, *, adopt: bool | None = None) -> set[str]:
    """The addresses of a plan document's changes, optionally only those with `action` / `adopt`."""
    return {
        change["address"]
        for change in document["resource_changes"]
        if (action is None or change["action"] == action) and (adopt is None or change["adopt"] is adopt)
    }


def change_of(document: dict[str, Any], address: str) -> dict[str, Any]:
    (change,) = [change for change in document["resource_changes"] if change["address"] == address]
    return change


def read_plan(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- plan and apply


def test_plan_on_a_fresh_copy_creates_the_new_adopts_the_seeded_and_writes_nothing(desk: Desk) -> None:
    plain = desk("plan")
    assert plain.returncode == 0, output(plain)
    document = json.loads(desk.ok("plan", "--format", "json").stdout)
    assert sorted(addresses(document)) == ADDRESSES
    assert addresses(document, "no-op", adopt=True) == DESK_QUEUES  # in the seed: recorded, not created
    assert addresses(document, "create") == set(ADDRESSES) - DESK_QUEUES
    counts = document["summary"]["counts"]
    assert (counts["create"], counts["adopt"]) == (len(ADDRESSES) - len(DESK_QUEUES), len(DESK_QUEUES))
    assert f"Plan: {counts['create']} to create, 0 to update" in plain.stdout
    assert f"{counts['adopt']} to adopt" in plain.stdout
    detailed = desk("plan", "--detailed-exitcode")
    assert detailed.returncode == 2, output(detailed)
    assert f"{counts['create']} to create" in detailed.stdout
    # only the sandbox's own files: no estate, no state, no lock, nothing written to the org
    assert all(name.startswith("sandbox/") for name in desk.recon_files()), sorted(desk.recon_files())
    assert not (desk.root / ESTATE).exists()
    assert desk.org() and desk.untouched()


def test_saved_plan_applies_exactly_once_and_is_recorded_in_state(desk: Desk) -> None:
    desk.ok("plan", "-out", "plan.json")
    document = read_plan(desk.root / "plan.json")
    seeded = desk.live_ids()
    applied = desk.ok("apply", "plan.json")
    assert f"Apply complete: {len(ADDRESSES)} succeeded, 0 failed, 0 skipped." in applied.stdout
    ids = desk.live_ids()
    assert seeded.items() <= ids.items()  # the adopted queues kept their ids
    assert ids.keys() - seeded.keys() == addresses(document, "create") - {HOLD}  # each created once
    held = change_of(document, HOLD)["change"]["after"]["conversations"]
    assert held and desk.protected() == set(held)

    again = desk("plan", "--detailed-exitcode")
    assert again.returncode == 0, output(again)
    assert "No changes" in again.stdout

    replayed = desk("apply", "plan.json")
    assert replayed.returncode == 1, output(replayed)
    assert "state changed" in replayed.stderr
    assert desk.live_ids() == ids  # nothing created twice
    assert desk.protected() == set(held)

    listed = desk.ok("state", "list")
    lines = [line for line in listed.stdout.splitlines() if not line.startswith("#")]
    assert [line.split()[0] for line in lines] == ADDRESSES
    assert all(line.endswith("ok") for line in lines)
    assert all(f"id={ids[line.split()[0]]}" in line for line in lines if not line.startswith(HOLD))

    shown = desk.ok("state", "show", GAS)
    assert json.loads(shown.stdout)["id"] == ids[GAS]
    missing = desk("state", "show", "Queue/nope")
    assert missing.returncode == 1
    assert "Queue/nope is not in the state" in missing.stderr


def _edit_manifest(desk: Desk, plan: Path) -> None:
    desk.edit("retention.yaml", "archiveAfter: 30d", "archiveAfter: 31d")


def _edit_after_value(desk: Desk, plan: Path) -> None:
    document = json.loads(plan.read_text(encoding="utf-8"))
    (change,) = [c for c in document["resource_changes"] if c["address"] == ARCHIVE]
    assert change["change"]["after"]["objectLock"]["defaultRetention"] == "7y"
    change["change"]["after"]["objectLock"]["defaultRetention"] = "8y"  # one character
    plan.write_text(json.dumps(document), encoding="utf-8")


def _expire(desk: Desk, plan: Path) -> None:
    document = json.loads(plan.read_text(encoding="utf-8"))
    document["created"], document["expires"] = "2020-01-01T00:00:00+00:00", "2020-01-02T00:00:00+00:00"
    document["digest"] = plan_digest(document)  # a well-formed plan, just old
    plan.write_text(json.dumps(document, indent=2), encoding="utf-8")


def _not_a_plan(desk: Desk, plan: Path) -> None:
    plan.write_text('{"resource_changes": []}\n', encoding="utf-8")


def _not_json(desk: Desk, plan: Path) -> None:
    plan.write_text("Plan: 12 to create\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        pytest.param(
            _edit_manifest, "the manifests changed since plan.json was made", id="manifests-edited-after-plan"
        ),
        pytest.param(_edit_after_value, "plan.json was modified after `recon plan` wrote it", id="after-value-edited"),
        pytest.param(_expire, "plan.json expired at 2020-01-02T00:00:00+00:00", id="expired-with-valid-digest"),
        pytest.param(_not_a_plan, "plan.json is not a recon plan file", id="json-but-not-a-plan"),
        pytest.param(_not_json, "plan.json is not a recon plan file", id="not-json-at-all"),
    ],
)
def test_saved_plan_is_refused_and_nothing_changes(desk: Desk, tamper: Any, message: str) -> None:
    desk.ok("plan", "-out", "plan.json")
    tamper(desk, desk.root / "plan.json")
    result = desk("apply", "plan.json")
    assert result.returncode == 1, output(result)
    assert message in result.stderr
    assert "next: " in result.stderr
    assert desk.untouched()


def test_reindented_plan_file_still_applies(desk: Desk) -> None:
    desk.ok("plan", "-out", "plan.json")
    plan = desk.root / "plan.json"
    document = json.loads(plan.read_text(encoding="utf-8"))
    plan.write_text(json.dumps(document, indent=7, sort_keys=True), encoding="utf-8")  # digest is canonical
    applied = desk.ok("apply", "plan.json")
    assert f"{len(document['resource_changes'])} succeeded, 0 failed" in applied.stdout


def test_show_prints_a_saved_plan_as_text_json_and_markdown(desk: Desk) -> None:
    desk.ok("plan", "-out", "plan.json")
    saved = json.loads((desk.root / "plan.json").read_text(encoding="utf-8"))

    text = desk.ok("show", "plan.json")
    assert f"Plan: {saved['summary']['counts']['create']} to create" in text.stdout
    assert "+ Queue/customer-service" in text.stdout
    assert "= Queue/energy-desk-gas (adopt" in text.stdout

    as_json = json.loads(desk.ok("show", "--json", "plan.json").stdout)
    assert as_json == saved  # the very same document
    assert as_json["format_version"] == 1
    assert as_json["digest"] == plan_digest(as_json)
    assert sorted(addresses(as_json)) == ADDRESSES
    assert addresses(as_json, "create") | addresses(as_json, "no-op", adopt=True) == set(ADDRESSES)

    markdown = desk.ok("show", "--format", "markdown", "plan.json").stdout
    assert markdown.count("<details>") == len(ADDRESSES)
    assert "recon apply plan.json" in markdown

    planned = desk.ok("plan", "--format", "markdown").stdout
    assert planned.startswith("**recon plan**")
    assert "<details>" in planned
    assert "recon apply plan.json" not in planned  # no -out: the command is plain `recon apply`


# --------------------------------------------------------------------------- blocked, forbidden, one-way


def test_compliance_error_blocks_plan_and_apply(desk: Desk) -> None:
    desk.edit("retention.yaml", "retain: 7y ", "retain: 3y ")
    planned = desk("plan")
    assert planned.returncode == 3, output(planned)
    assert "mifid2.retention-minimum" in planned.stdout
    assert "BLOCKED" in planned.stdout

    applied = desk("apply", "--auto-approve")
    assert applied.returncode == 3, output(applied)
    assert "mifid2.retention-minimum" in applied.stderr

    saved = desk("plan", "-out", "blocked.json")
    assert saved.returncode == 3
    assert desk("show", "blocked.json").returncode == 3
    from_file = desk("apply", "blocked.json")
    assert from_file.returncode == 3
    assert "blocked.json is blocked and cannot be applied" in from_file.stderr
    assert desk.untouched()


def test_shortening_compliance_retention_is_forbidden_and_lengthening_is_one_way(desk: Desk) -> None:
    desk.apply()
    policies = desk.genesys("policies")

    desk.edit("archive.yaml", "defaultRetention: 7y", "defaultRetention: 5y")
    desk.edit("retention.yaml", "retain: 7y ", "retain: 5y ")  # still >= MiFID II's 5y: only the provider objects
    forbidden = desk("plan")
    assert forbidden.returncode == 3, output(forbidden)
    assert "FORBIDDEN" in forbidden.stdout and "cannot be shortened (7y → 5y)" in forbidden.stdout
    assert "error[" not in forbidden.stdout  # no compliance finding involved
    refused = desk("apply", "--auto-approve")
    assert refused.returncode == 3, output(refused)
    assert desk.retention() == "7y"
    assert desk.genesys("policies") == policies  # its deleteAfterDays 7y → 5y was not applied either

    desk.edit("archive.yaml", "defaultRetention: 5y", "defaultRetention: 10y")
    desk.edit("retention.yaml", "retain: 5y ", "retain: 7y ")
    one_way = desk("plan", "--detailed-exitcode")
    assert one_way.returncode == 2, output(one_way)
    assert "ONE-WAY" in one_way.stdout and "apply needs --allow-one-way" in one_way.stdout
    not_allowed = desk("apply", "--auto-approve")
    assert not_allowed.returncode == 1, output(not_allowed)
    assert "--allow-one-way" in not_allowed.stderr
    assert desk.retention() == "7y"

    allowed = desk.ok("apply", "--auto-approve", "--allow-one-way")
    assert "1 succeeded" in allowed.stdout
    assert desk.retention() == "10y"
    assert desk("plan", "--detailed-exitcode").returncode == 0


@pytest.mark.parametrize(
    "stdin",
    [pytest.param(None, id="stdin-closed"), pytest.param("yes\n", id="yes-piped-is-not-a-confirmation")],
)
def test_apply_without_plan_file_needs_a_terminal_or_auto_approve(desk: Desk, stdin: str | None) -> None:
    refused = desk("apply", stdin=stdin)
    assert refused.returncode == 1, output(refused)
    assert f"{len(ADDRESSES) - len(DESK_QUEUES)} to create" in refused.stdout  # the plan is shown first
    assert "stdin is not a terminal" in refused.stderr and "--auto-approve" in refused.stderr
    assert desk.untouched()
    assert f"{len(ADDRESSES)} succeeded" in desk.apply().stdout
    assert set(ADDRESSES) - {HOLD} <= set(desk.live_ids()) and desk.protected()


# --------------------------------------------------------------------------- drift

# Hand edits made after an apply, and what `recon drift --format json` must say about each:
# address → (side, is_drift, changed_by).
DRIFT_SIDES = {
    ARCHIVE: ("live", True, None),  # S3: who changed a bucket is in CloudTrail, which recon does not read
    GAS: ("live", True, JANE),  # Genesys org, through the admin console
    FEED: ("live-deleted", True, None),
    "RecordingPolicy/customer-service-voice": ("both", True, JANE),
    "RecordingPolicy/mifid2-mandatory-voice": ("manifests", False, None),  # via its RetentionPolicy
    "Queue/energy-desk-oil": ("unmanaged", False, None),
}

NEW_QUEUE = """\
apiVersion: recon/v1
kind: Queue
metadata:
  name: energy-desk-oil
spec:
  regulated: false
  region: eu-west-1
  clientRegion: EU
"""


def test_drift_says_which_side_moved_and_apply_reverts_it(desk: Desk) -> None:
    desk.apply()
    clean = desk("drift")
    assert clean.returncode == 0, output(clean)
    assert "No drift" in clean.stdout

    desk.s3().delete_public_access_block(Bucket=BUCKET)
    desk.mutate("queues", "energy-desk-gas", suppressInQueueCallRecording=True)
    assert desk.store.remove("MarketDataFeed", "gas-hub-prices")
    desk.mutate("policies", "customer-service-voice", enabled=False)
    desk.edit("retention.yaml", "retain: 180d", "retain: 365d")  # customer-service-voice's deleteAfterDays
    desk.edit("retention.yaml", "archiveAfter: 30d", "archiveAfter: 45d")  # mifid2-mandatory-voice's archiveAfterDays
    (desk.root / "new-queue.yaml").write_text(NEW_QUEUE, encoding="utf-8")

    text = desk("drift")
    assert text.returncode == 2, output(text)
    archive_line = next(line for line in text.stdout.splitlines() if ARCHIVE in line)
    assert "(by " not in archive_line, "no audit trail read on AWS: nobody is named rather than a guess"
    assert '~ publicAccess: "blocked" -> "allowed"' in text.stdout
    gas_line = next(line for line in text.stdout.splitlines() if f"{GAS}:" in line)
    assert f"(by {JANE} at " in gas_line and "UTC via admin-console)" in gas_line
    assert "~ suppressInQueueCallRecording: false -> true" in text.stdout
    assert "~ archiveAfterDays: 30 -> 45" in text.stdout
    assert "Pending changes, not drift" in text.stdout

    as_json = desk("drift", "--format", "json")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["has_drift"] is True
    assert {i["address"]: (i["side"], i["is_drift"], i["changed_by"]) for i in report["items"]} == DRIFT_SIDES
    drifted = sum(is_drift for _, is_drift, _ in DRIFT_SIDES.values())
    assert (report["counts"]["drifted"], report["counts"]["pending"]) == (drifted, len(DRIFT_SIDES) - drifted)

    alert = desk("drift", "--format", "markdown", "-o", "alert.md")
    assert alert.returncode == 2
    assert alert.stdout == ""
    markdown = (desk.root / "alert.md").read_text(encoding="utf-8")
    assert ARCHIVE in markdown and JANE in markdown and "`publicAccess`" in markdown

    desk.apply()
    live = desk.live()
    assert all(desk.s3().get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"].values())
    assert "gas-hub-prices" in live["MarketDataFeed"]
    queues, policies = desk.genesys("queues"), desk.genesys("policies")
    assert queues["energy-desk-gas"]["suppressInQueueCallRecording"] is False
    assert "energy-desk-oil" in queues
    service = policies["customer-service-voice"]
    assert service["enabled"] is True
    assert service["mediaPolicies"]["callPolicy"]["actions"]["retentionDuration"]["deleteRetention"]["days"] == 365
    mifid2 = policies["mifid2-mandatory-voice"]["mediaPolicies"]["callPolicy"]["actions"]["retentionDuration"]
    assert mifid2["archiveRetention"]["days"] == 45
    reverted = desk("drift")
    assert reverted.returncode == 0, output(reverted)
    assert "0 drifted, 0 pending" in reverted.stdout

    desk.edit("archive.yaml", "prefix: access/", "prefix: audit/")  # manifests only: pending, not drift
    pending = desk("drift")
    assert pending.returncode == 0, output(pending)
    assert "0 drifted, 1 pending" in pending.stdout
    assert ARCHIVE in pending.stdout and '~ accessLogging.prefix: "access/" -> "audit/"' in pending.stdout


# --------------------------------------------------------------------------- orphans


def test_removed_feed_is_orphaned_until_pruned(desk: Desk) -> None:
    desk.apply()
    (desk.root / "market-data.yaml").unlink()

    kept = desk("plan", "--detailed-exitcode")
    assert kept.returncode == 0, output(kept)
    assert f"{FEED}: removed from the manifests; kept because --prune was not given" in kept.stdout
    assert "0 to delete" in kept.stdout and "1 orphaned" in kept.stdout
    assert "gas-hub-prices" in desk.live()["MarketDataFeed"]

    pruned = desk.ok("plan", "--prune", "-out", "p.json")
    assert f"- {FEED}" in pruned.stdout and "1 to delete" in pruned.stdout
    desk.ok("apply", "p.json")
    assert "MarketDataFeed" not in desk.live()
    assert FEED not in desk.ok("state", "list").stdout


def test_removed_legal_hold_is_never_deleted_only_forgotten(desk: Desk) -> None:
    desk.apply()
    held = desk.protected()  # on Genesys a hold is its protected conversations
    assert held
    (desk.root / "holds.yaml").unlink()

    pruned = desk("plan", "--prune", "--detailed-exitcode")
    assert pruned.returncode == 0, output(pruned)
    assert "recon never deletes a LegalHold" in pruned.stdout and "0 to delete" in pruned.stdout
    desk.ok("apply", "--prune", "--auto-approve")
    assert desk.protected() == held

    forgotten = desk.ok("plan", "--forget", "-out", "f.json")
    assert "1 to forget" in forgotten.stdout
    desk.ok("apply", "f.json")
    assert desk.protected() == held  # still protected on the platform
    assert HOLD not in desk.ok("state", "list").stdout
    after = desk("plan", "--detailed-exitcode")
    assert after.returncode == 0, output(after)
    assert "orphaned" not in after.stdout


# --------------------------------------------------------------------------- import and export


def _gas_queue_id(desk: Desk) -> str:
    """The id of the seeded energy-desk-gas queue (starts the sandbox, as import would, if it is not running)."""
    ensure_running(desk.root / ORG.parent)
    return desk.genesys("queues")["energy-desk-gas"]["id"]


def test_import_binds_a_live_object_so_the_next_plan_does_not_create_it(desk: Desk) -> None:
    first = json.loads(desk.ok("plan", "--format", "json").stdout)
    assert change_of(first, GAS)["adopt"] is True  # live, not in state yet
    queue_id = _gas_queue_id(desk)
    queues_before = desk.genesys("queues")

    imported = desk.ok("import", GAS, queue_id)
    assert f"Imported {GAS} (id {queue_id})" in imported.stdout
    assert json.loads(desk.ok("state", "show", GAS).stdout)["id"] == queue_id
    twice = desk("import", GAS, queue_id)
    assert twice.returncode == 1 and "already managed" in twice.stderr
    assert desk.genesys("queues") == queues_before  # import changes nothing on the platform

    planned = json.loads(desk.ok("plan", "--format", "json").stdout)
    gas = change_of(planned, GAS)
    assert (gas["action"], gas["adopt"], gas["id"]) == ("no-op", False, queue_id)
    assert planned["summary"]["counts"]["create"] == first["summary"]["counts"]["create"]
    assert planned["summary"]["counts"]["adopt"] == first["summary"]["counts"]["adopt"] - 1
    assert GAS not in addresses(planned, "create")

    desk.apply()
    assert desk.genesys("queues")["energy-desk-gas"]["id"] == queue_id  # and no second energy-desk-gas


@pytest.mark.parametrize(
    ("address", "object_id", "message"),
    [
        pytest.param("Queue/energy-desk-oil", "{id}", "Queue/energy-desk-oil is not declared", id="undeclared-address"),
        pytest.param(GAS, "queue-999999", "no Queue with id queue-999999 exists", id="unknown-id"),
        pytest.param(ARCHIVE, "{id}", "no ArchiveBucket with id", id="id-of-another-kind"),
        pytest.param("energy-desk-gas", "{id}", "is not a resource address", id="address-without-kind"),
        pytest.param("Widget/energy-desk-gas", "{id}", "kind 'Widget' is not managed", id="unknown-kind"),
    ],
)
def test_import_refuses_what_it_cannot_bind(desk: Desk, address: str, object_id: str, message: str) -> None:
    queue_id = _gas_queue_id(desk)
    result = desk("import", address, object_id.format(id=queue_id))
    assert result.returncode == 1, output(result)
    assert message in result.stderr
    assert desk.state().resources == {}


def test_import_refuses_an_id_already_managed_under_another_address(desk: Desk) -> None:
    queue_id = _gas_queue_id(desk)
    desk.ok("import", GAS, queue_id)
    second = desk("import", "Queue/energy-desk-power", queue_id)
    assert second.returncode == 1, output(second)
    assert "Queue/energy-desk-power" not in desk.state().resources


def test_export_drafts_manifests_that_a_new_project_adopts(desk: Desk, tmp_path: Path) -> None:
    desk.apply()
    fakes = {a for a in desk.live_ids() if a.split("/")[0] not in ("Queue", "RecordingPolicy", "ArchiveBucket")}
    live = fakes | {f"ArchiveBucket/{bucket}" for bucket in desk.buckets()}  # the archive and its log bucket
    exported = desk.ok("export", "out", "--project-dir", "desk", cwd=tmp_path)
    assert f"Exported {len(live)} resources" in exported.stdout
    assert "Not exported: LegalHold, Queue, RecordingPolicy" in exported.stderr, (
        "Genesys objects are not whole manifests"
    )
    out = tmp_path / "out"
    files = {path.name: path.read_bytes() for path in sorted(out.iterdir())}
    kinds = {}
    for name, content in files.items():
        documents = list(yaml.safe_load_all(content))
        (kinds[name],) = {document["kind"] for document in documents}  # one kind per file
    assert sorted(kinds.values()) == sorted({address.split("/")[0] for address in live})
    assert kinds["archive-bucket.yaml"] == "ArchiveBucket" and "queue.yaml" not in kinds

    hand_declared = ["queues.yaml.j2", "recording.yaml", "retention.yaml"]  # the kinds export names, written by hand
    draft = tmp_path / "draft"
    shutil.copytree(out, draft)
    for name in hand_declared:
        shutil.copy(desk.root / name, draft / name)
    validated = desk("validate", "draft", "--as-of", AS_OF, cwd=tmp_path)
    assert validated.returncode in (0, 3), output(validated)

    again = desk("export", "out", "--project-dir", "desk", cwd=tmp_path)
    assert again.returncode == 1, output(again)
    assert "refusing to overwrite" in again.stderr
    assert {path.name: path.read_bytes() for path in sorted(out.iterdir())} == files

    adopted = Desk(tmp_path / "adopted")  # the same platform: the same sandbox daemon (its S3 is in memory)
    (adopted.root / ".recon").mkdir(parents=True)
    (adopted.root / ".recon" / "sandbox").symlink_to(desk.root / ".recon" / "sandbox")
    for name in [*files, *hand_declared]:
        shutil.copy(draft / name, adopted.root / name)
    (adopted.root / "recon.yaml").write_text("target: sandbox\n", encoding="utf-8")
    before = adopted.live_ids()

    planned = adopted("plan", "--detailed-exitcode")
    assert planned.returncode == 2, output(planned)
    declared_by_hand = 6  # 4 queues and 2 recording policies, all already on the org
    assert "0 to create" in planned.stdout and f"{len(live) + declared_by_hand} to adopt" in planned.stdout
    adopted.apply()
    assert adopted.live_ids() == before  # recorded, not created again
    settled = adopted("plan", "--detailed-exitcode")
    assert settled.returncode == 0, output(settled)


# --------------------------------------------------------------------------- locks


def _write_lock(desk: Desk, pid: int) -> LockInfo:
    now = dt.datetime.now(dt.UTC)
    info = LockInfo(
        id=str(uuid.uuid4()),
        owner="alice.trader",
        host=socket.gethostname(),
        pid=pid,
        operation="apply",
        created=now.isoformat(timespec="seconds"),
        expires=(now + dt.timedelta(hours=1)).isoformat(timespec="seconds"),
        fence=1,
        pid_started=process_start(pid) or "",
    )
    (desk.root / LOCK).parent.mkdir(parents=True, exist_ok=True)
    (desk.root / LOCK).write_text(json.dumps(info.to_json(), indent=2) + "\n", encoding="utf-8")
    return info


def test_lock_held_by_a_live_process_blocks_apply_until_force_unlocked(desk: Desk) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        info = _write_lock(desk, holder.pid)
        lock_bytes = (desk.root / LOCK).read_bytes()

        blocked = desk("apply", "--auto-approve")
        assert blocked.returncode == 1, output(blocked)
        for detail in ("alice.trader", info.host, f"pid {holder.pid}", "for apply", info.id):
            assert detail in blocked.stderr
        assert desk.untouched()

        wrong = desk("force-unlock", "WRONGID")
        assert wrong.returncode == 1, output(wrong)
        assert "does not match" in wrong.stderr and info.id in wrong.stderr
        assert (desk.root / LOCK).read_bytes() == lock_bytes

        unlocked = desk.ok("force-unlock", info.id)
        assert f"Removed lock {info.id} held by alice.trader@{info.host} (pid {holder.pid}) for apply" in (
            unlocked.stdout
        )
        assert not (desk.root / LOCK).exists()
        twice = desk("force-unlock", info.id)
        assert twice.returncode == 1 and "is not locked" in twice.stderr

        assert f"{len(ADDRESSES)} succeeded" in desk.apply().stdout
    finally:
        holder.terminate()
        holder.wait(timeout=10)


def test_lock_left_by_a_dead_process_on_this_host_is_broken_automatically(desk: Desk) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait(timeout=30)
    info = _write_lock(desk, gone.pid)
    applied = desk.apply()
    assert f"{len(ADDRESSES)} succeeded" in applied.stdout
    assert f"process {gone.pid} is no longer running" in applied.stderr and info.id in applied.stderr
    assert not (desk.root / LOCK).exists()


# --------------------------------------------------------------------------- bad input


def test_input_error_names_file_line_and_field_and_changes_nothing(desk: Desk) -> None:
    desk.apply()
    desk.edit("archive.yaml", "  publicAccess: blocked\n", "  publicAccess: blocked\n  publicAcess: open\n")
    recon_files, live = desk.recon_files(), desk.live()
    for command in (
        ["plan"],
        ["plan", "-out", "p.json"],
        ["apply", "--auto-approve"],
        ["drift"],
        ["import", GAS, "queue-000003"],
    ):
        result = desk(*command)
        assert result.returncode == 1, (command, output(result))
        assert "archive.yaml:15:3: error: spec.publicAcess: unknown field 'publicAcess'" in result.stderr, command
    assert not (desk.root / "p.json").exists()
    assert desk.recon_files() == recon_files
    assert desk.live() == live
    listed = desk.ok("state", "list")  # needs only recon.yaml: works while the manifests are broken
    assert len([line for line in listed.stdout.splitlines() if "id=" in line]) == len(ADDRESSES)


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["apply", "--auto-approve"], id="apply"),
        pytest.param(["import", GAS, "queue-000001"], id="import"),
    ],
)
def test_bad_lock_timeout_is_a_usage_error(desk: Desk, command: list[str]) -> None:
    result = desk(*command, "--lock-timeout", "abc")
    assert result.returncode == 1, output(result)
    assert "Invalid value for '--lock-timeout': 'abc' is not a duration" in result.stderr
    assert "e.g. 200ms, 10s, 30d, 7y" in result.stderr
    assert not (desk.root / ".recon").exists()


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["plan", "--detailed-exitcode", "--format", "xml"], id="plan-bad-choice"),
        pytest.param(["apply", "--auto-approve", "--parallelism", "0"], id="apply-out-of-range"),
    ],
)
def test_bad_flag_value_exits_1_not_the_changes_code(desk: Desk, command: list[str]) -> None:
    result = desk(*command)
    assert result.returncode == 1, output(result)


# --------------------------------------------------------------------------- secrets and safety


def test_secret_values_from_the_environment_never_leak(desk: Desk, tmp_path: Path) -> None:
    secrets = {"TRADESENSE_TOKEN_A": "supersecret-token-value-123", "FEED_CLIENT_KEY": "feed-key-value-456"}
    results = [
        desk("plan", "-out", "plan.json", env=secrets),
        desk("plan", "--format", "markdown", env=secrets),
        desk("show", "--json", "plan.json", env=secrets),
        desk("apply", "plan.json", env=secrets),
        desk("drift", "--format", "json", env=secrets),
        desk("state", "list", "--json", env=secrets),
        desk("export", "out", env=secrets),
    ]
    assert [r.returncode for r in results] == [0, 0, 0, 0, 0, 0, 0], [output(r) for r in results]
    assert desk.live_ids()  # the cycle really ran
    for result in results:
        for value in secrets.values():
            assert value not in output(result), result.args
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert desk.root / "plan.json" in files and desk.root / ESTATE in files
    assert any(path.is_relative_to(desk.root / ".recon") and path.name == "state.json" for path in files)
    for path in files:
        for value in secrets.values():
            assert value.encode() not in path.read_bytes(), path


def test_saved_plan_never_shortens_retention_that_was_lengthened_on_the_platform_since(desk: Desk) -> None:
    desk.apply()
    desk.edit("archive.yaml", "prefix: access/", "prefix: audit/")
    planned = desk.ok("plan", "-out", "plan.json")
    assert "1 to update" in planned.stdout and "FORBIDDEN" not in planned.stdout
    desk.s3().put_object_lock_configuration(
        Bucket=BUCKET,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 10}},
        },
    )  # someone lengthened it in the console
    assert desk("plan").returncode == 3  # planned now, the update would be forbidden (10y → 7y)

    result = desk("apply", "plan.json")
    assert desk.retention() == "10y"
    assert result.returncode != 0


def test_saved_plan_applies_from_another_folder_and_under_any_name(tmp_path: Path) -> None:
    project = tmp_path / "pb"
    copy_desk(project)
    run = Desk(tmp_path)
    made = run("plan", "pb", "-out", "pb/release.plan")
    assert made.returncode == 0, output(made)
    planned = len(read_plan(project / "release.plan")["resource_changes"])
    applied = run("apply", "release.plan", cwd=project)
    assert applied.returncode == 0 and f"{planned} succeeded, 0 failed" in applied.stdout, output(applied)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("plan", "-out", "missing/folder/plan.json"), id="plan-out-into-a-missing-folder"),
        pytest.param(("drift", "-o", "missing/folder/drift.txt"), id="drift-report-into-a-missing-folder"),
        pytest.param(("apply", "binary.plan"), id="apply-a-file-that-is-not-text"),
        pytest.param(("show", "binary.plan"), id="show-a-file-that-is-not-text"),
    ],
)
def test_unwritable_and_unreadable_files_are_clear_errors(desk: Desk, args: tuple[str, ...]) -> None:
    (desk.root / "binary.plan").write_bytes(b"\xff\xfe\x00garbage")
    result = desk(*args)
    assert result.returncode == 1, output(result)
    assert "Traceback" not in output(result) and "error:" in result.stderr
