"""`recon evidence verify / show` through the real console script: a log built with the
library verifies (exit 0); tampered through sqlite3 it exits 2 naming the seq and the kind;
a missing log exits 1 saying where it looked; saved chain heads catch a deleted tail."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from conftest import Recon

from reconciler.runtime.evidence import EvidenceLog, canonical_json, snapshot_digest
from reconciler.runtime.evidence_heads import current_head

SNAP = snapshot_digest({"symbol": "EURUSD", "bid": 1.0841})


def build(root: Path, count: int = 6) -> Path:
    path = root / ".recon" / "runtime.db"
    with EvidenceLog(path) as log:
        for i in range(1, count + 1):
            log.append(f"conv-{i}", f"rec-{i}", SNAP, None, "attached" if i % 3 else "data_fetch_failed")
    return path


def tamper(path: Path, statement: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(f"BEGIN; {statement}; COMMIT;")
    db.close()


def test_intact_log_exits_0(recon: Recon, tmp_path: Path) -> None:
    build(tmp_path)
    result = recon("evidence", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact, 6 records, 0 documents bound, head seq 6" in result.stdout


@pytest.mark.parametrize(
    ("statement", "seq", "kind"),
    [
        pytest.param(f"UPDATE evidence SET snapshot_sha256 = '{'0' * 64}' WHERE seq = 3", 3, "edited", id="edited"),
        pytest.param("DELETE FROM evidence WHERE seq = 4", 4, "deleted", id="deleted"),
        pytest.param(
            "UPDATE evidence SET seq = -2 WHERE seq = 2; UPDATE evidence SET seq = 2 WHERE seq = 5; "
            "UPDATE evidence SET seq = 5 WHERE seq = -2",
            2,
            "reordered",
            id="reordered",
        ),
    ],
)
def test_tampered_log_exits_2_naming_seq_and_kind(
    recon: Recon, tmp_path: Path, statement: str, seq: int, kind: str
) -> None:
    tamper(build(tmp_path), statement)
    result = recon("evidence", "verify")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"TAMPERED at seq {seq}: {kind}" in result.stdout

    as_json = recon("evidence", "verify", "--format", "json")
    assert as_json.returncode == 2
    report = json.loads(as_json.stdout)
    assert report["break"]["seq"] == seq and report["break"]["kind"] == kind


def test_missing_log_exits_1(recon: Recon, tmp_path: Path) -> None:
    result = recon("evidence", "verify", "--db", "nowhere/runtime.db")
    assert result.returncode == 1
    assert "no evidence log at nowhere/runtime.db" in result.stderr
    assert "next: pass --db PATH" in result.stderr
    assert not (tmp_path / "nowhere").exists()  # verify never creates a log


def test_not_a_log_exits_1(recon: Recon, tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_text("not sqlite")
    result = recon("evidence", "verify", "--db", "junk.db")
    assert result.returncode == 1
    assert "is not a readable evidence log" in result.stderr


def test_json_keys(recon: Recon, tmp_path: Path) -> None:
    build(tmp_path)
    result = recon("evidence", "verify", "--format", "json")
    assert result.returncode == 0
    report = json.loads(result.stdout)
    assert set(report) == {
        "db",
        "heads_from",
        "heads_ignored",
        "intact",
        "log",
        "format",
        "records",
        "documents",
        "head",
        "heads_checked",
        "unanchored",
        "verified_through",
        "break",
    }
    assert report["format"] == 3 and len(report["log"]) == 32
    assert report["intact"] is True and report["break"] is None and report["head"]["seq"] == 6


def test_saved_heads_catch_a_deleted_tail(recon: Recon, tmp_path: Path) -> None:
    path = build(tmp_path)
    with EvidenceLog(path) as log:
        head = current_head(log)
    assert head is not None
    heads = tmp_path / "heads"
    heads.mkdir()
    (heads / f"{head.seq:012d}.json").write_bytes(canonical_json(head.to_json()))
    tamper(path, "DELETE FROM evidence WHERE seq = 6")

    assert recon("evidence", "verify").returncode == 0  # what is left is consistent
    result = recon("evidence", "verify", "--heads-dir", "heads")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TAMPERED at seq 6: head-mismatch" in result.stdout
    assert "1 published heads checked from heads" in result.stdout


def test_show_last(recon: Recon, tmp_path: Path) -> None:
    build(tmp_path)
    result = recon("evidence", "show", "--last", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["SEQ", "RECORDED_AT", "CONVERSATION", "RECORDING", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["5", "6"]
    assert "data_fetch_failed" in lines[2]
    as_json = json.loads(recon("evidence", "show", "--last", "1", "--format", "json").stdout)
    assert as_json[0]["seq"] == 6 and as_json[0]["snapshot_sha256"] == SNAP
