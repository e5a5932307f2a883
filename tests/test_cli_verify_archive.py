"""End to end through the CLI on the sandbox target: `recon apply` creates the example's
archive bucket in the sandbox's moto S3, `recon sandbox export` writes the platform's
recording export into it, and `recon verify-archive` finds it intact (exit 0); then the
archive is tampered with through boto3 (a delete marker, a new audio version, a metadata
document without participants) and each tampering is a named gap (exit 2) in text, JSON and
Markdown. One project (and one sandbox daemon) serves the module; each case re-exports first,
which writes fresh current versions over any earlier tampering."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from conftest import EXAMPLES, _recon_command

from reconciler.providers.archive_layout import parse_key

BUCKET = "acme-trading-recordings-eu"
FIRST, LAST = dt.date.today() - dt.timedelta(days=60), dt.date.today() - dt.timedelta(days=30)
PERIOD = ("--from", FIRST.isoformat(), "--to", LAST.isoformat())
"""A month of the seed's history (the seed's calls are spread over the last 420 days)."""

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("verify") / "energy-desk-eu"
    shutil.copytree(EXAMPLES / "energy-desk-eu", root)
    yield root
    from reconciler.sandbox.process import down  # noqa: PLC0415

    down(root / ".recon" / "sandbox")


@pytest.fixture(scope="module")
def run(project: Path) -> Run:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_recon_command(), *args],
            cwd=project,
            env={**os.environ, "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    return run


@pytest.fixture(scope="module")
def applied(project: Path, run: Run) -> Path:
    result = run("apply", "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    return project


@pytest.fixture
def exported(applied: Path, run: Run) -> Path:
    result = run("sandbox", "export", "--bucket", BUCKET, *PERIOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "exported" in result.stdout
    return applied


def s3(root: Path) -> Any:
    entry = json.loads((root / ".recon" / "sandbox" / "endpoints.json").read_text())["services"]["s3"]
    return boto3.client(
        "s3",
        endpoint_url=entry["url"],
        region_name=entry["region"],
        aws_access_key_id=entry["accessKeyId"],
        aws_secret_access_key=entry["secretAccessKey"],
    )


def victim(client: Any) -> tuple[str, str, str]:
    """(conversation id, audio key, metadata key) of the first exported conversation."""
    keys = sorted(
        o["Key"]
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
        for o in page.get("Contents", [])
        if (found := parse_key(o["Key"])) is not None and FIRST <= found.hour.date() <= LAST
    )
    meta = next(k for k in keys if k.endswith("/_metadata.json"))
    folder = meta.rsplit("/", 1)[0] + "/"
    audio = next(k for k in keys if k.startswith(folder) and k != meta)
    return folder.split("conversation_id=")[1].rstrip("/"), audio, meta


def delete_audio(client: Any, audio: str, meta: str) -> None:
    client.delete_object(Bucket=BUCKET, Key=audio)  # versioned + locked: a delete marker


def overwrite_audio(client: Any, audio: str, meta: str) -> None:
    client.put_object(Bucket=BUCKET, Key=audio, Body=b"not the recording")  # a new current version


def drop_participants(client: Any, audio: str, meta: str) -> None:
    document = json.loads(client.get_object(Bucket=BUCKET, Key=meta)["Body"].read())
    del document["participants"]
    client.put_object(Bucket=BUCKET, Key=meta, Body=json.dumps(document).encode())


def test_a_fresh_export_verifies_clean(exported: Path, run: Run) -> None:
    result = run("verify-archive", *PERIOD)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 gaps" in result.stdout and "every recording is archived and intact" in result.stdout
    document = json.loads(run("verify-archive", *PERIOD, "--format", "json").stdout)
    assert document["totals"]["gaps"] == 0
    assert document["totals"]["ok"] == document["totals"]["conversations"] > 0
    assert document["period"] == {"from": FIRST.isoformat(), "to": LAST.isoformat()}


TAMPERING = [
    ("audio deleted (delete marker)", delete_audio, "missing-recording", []),
    ("audio overwritten (new version)", overwrite_audio, "hash-mismatch", []),
    ("metadata re-uploaded without participants", drop_participants, "bad-metadata", ["participants"]),
]


@pytest.mark.parametrize(("tamper", "outcome", "fields"), [t[1:] for t in TAMPERING], ids=[t[0] for t in TAMPERING])
def test_tampering_is_a_named_gap(
    exported: Path, run: Run, tamper: Callable[[Any, str, str], None], outcome: str, fields: list[str]
) -> None:
    client = s3(exported)
    conversation, audio, meta = victim(client)
    tamper(client, audio, meta)

    text = run("verify-archive", *PERIOD)
    assert text.returncode == 2, text.stdout + text.stderr
    gap_lines = [line for line in text.stdout.splitlines() if conversation in line]
    assert len(gap_lines) == 1 and outcome in gap_lines[0]
    assert "1 gaps" in text.stdout

    document = json.loads(run("verify-archive", *PERIOD, "--format", "json").stdout)
    assert document["totals"]["gaps"] == 1 and document["totals"][outcome] == 1
    (gap,) = document["gaps"]
    assert (gap["conversationId"], gap["outcome"], gap["fields"]) == (conversation, outcome, fields)

    if outcome == "missing-recording":  # one Markdown check is enough (each CLI call costs seconds)
        report = exported / "gaps.md"
        markdown = run("verify-archive", *PERIOD, "--format", "markdown", "-o", str(report))
        assert markdown.returncode == 2, markdown.stderr
        table = report.read_text()
        assert "| Conversation | Started (UTC) | Gap | Detail |" in table
        assert f"| `{conversation}` |" in table and outcome in table


def test_unknown_bucket_name_is_an_error(applied: Path, run: Run) -> None:
    result = run("verify-archive", "--bucket", "nope", *PERIOD)
    assert result.returncode == 1
    assert "no ArchiveBucket named 'nope'" in result.stderr and "trading-archive-eu" in result.stderr


def test_stamped_calls_are_bound_to_their_archived_audio(applied: Path, run: Run) -> None:
    from test_cli_genesys import Org  # noqa: PLC0415

    today = dt.datetime.now(dt.UTC)
    start = (today - dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    made = Org(applied).post(
        "/api/v2/sandbox/conversations",
        {"queue": "energy-desk-gas", "users": ["lena.berg@acme.example"], "startTime": start, "count": 3},
    )["conversations"]
    stamped = run("runtime", "--once", "--since", "10m")
    assert stamped.returncode == 0, stamped.stdout + stamped.stderr
    assert "published to the archive bucket" in stamped.stdout and "heads_not_published" not in stamped.stderr

    before = run("evidence", "bind-audio")
    assert before.returncode == 0, before.stdout + before.stderr
    assert "0 call(s) bound" in before.stdout and "3 awaiting export" in before.stdout, "nothing archived yet"

    ok_export = run("sandbox", "export", "--bucket", BUCKET, "--from", today.date().isoformat())
    assert ok_export.returncode == 0, ok_export.stdout + ok_export.stderr
    client = s3(applied)
    victim_audio = next(
        o["Key"]
        for o in client.list_objects_v2(Bucket=BUCKET, Prefix="")["Contents"]
        if f"conversation_id={made[2]}/" in o["Key"] and not o["Key"].endswith("_metadata.json")
    )
    overwrite_audio(client, victim_audio, "")

    bound = run("evidence", "bind-audio")
    assert bound.returncode == 2, bound.stdout + bound.stderr
    assert "2 call(s) bound" in bound.stdout and "1 with audio not matching its metadata" in bound.stdout
    assert made[2] in bound.stdout, "the call whose audio was replaced is named"
    again = run("evidence", "bind-audio")
    assert "0 call(s) bound" in again.stdout, "binding is idempotent"
    heads = run("evidence", "verify", "--heads")
    assert heads.returncode == 0 and "published heads checked" in heads.stdout, heads.stdout + heads.stderr

    records = json.loads(run("evidence", "show", "--last", "50", "--format", "json").stdout)
    audio_records = {r["conversation_id"]: r for r in records if r["status"] == "audio_archived"}
    assert set(audio_records) == set(made[:2])
    stamping = {r["conversation_id"]: r for r in records if r["status"] == "attached"}
    for conversation, record in audio_records.items():
        assert record["snapshot_sha256"] == stamping[conversation]["snapshot_sha256"], "audio and prices in one record"
        assert len(record["audio_sha256"]) == 64
    found = json.loads(run("search", "market_snapshot.commodity=Natural_Gas_Hub", "--format", "json").stdout)
    with_audio = {c["conversationId"]: c["audioSha256"] for c in found["calls"] if c["conversationId"] in made}
    assert with_audio[made[0]] == audio_records[made[0]]["audio_sha256"] and with_audio[made[2]] is None
