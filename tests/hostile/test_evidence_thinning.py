"""Issue 17, class 10: evidence cannot be quietly thinned.

Deleting a row of the `documents` table left both `recon evidence verify --heads` and `recon
search` reporting intact (search "scanned 19 of 20"); heads keyed by seq alone made two logs
publishing to one bucket overwrite each other. Here every way an insider with the file (and
write access to a heads folder) could thin or alter the log is tried with sqlite3 behind the
library's back, and `verify` and `search` must name the same first bad seq, with exit 2
through the CLI: rows and documents deleted, edited, swapped, duplicated or re-dated, the
log's identity changed, the tail cut (bracketed by published heads), the whole file rolled
back, heads of two logs in one bucket, a head from another log, an edited head file, and a
format-2 log upgraded and then thinned.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from conftest import Recon
from moto_http import moto_server

from reconciler.cli import cli
from reconciler.errors import ReconError
from reconciler.runtime.evidence import EvidenceLog, HeadPublisher, canonical_json, publish_head, read_heads, verify
from reconciler.runtime.evidence_heads import current_head
from reconciler.runtime.search import parse_terms, search

START = dt.datetime(2026, 8, 1, 9, tzinfo=dt.UTC)
CALLS = 20


def document(i: int) -> bytes:
    snapshot = {"commodity": 2.0 + i / 100, "instruments": {"commodity": "Natural_Gas_Hub"}}
    return canonical_json({"market_snapshot": snapshot, "status": "attached"})


def stamp(log: EvidenceLog, first: int, last: int) -> None:
    for i in range(first, last + 1):
        text = document(i)
        started = START + dt.timedelta(minutes=i)
        log.append(f"c{i}", f"r{i}", hashlib.sha256(text).hexdigest(), document=text, call_started=started)


def build(path: Path) -> Path:
    """20 stamped calls (seq 1..20, each with its document) and an audio record (seq 21)."""
    with EvidenceLog(path) as log:
        stamp(log, 1, CALLS)
        log.append("c3", "r3", "a" * 64, "b" * 64, "audio_archived")
    return path


def sql(path: Path, script: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(script)
    db.close()


def save_head(log: EvidenceLog, folder: Path) -> None:
    """What the publisher writes, as a file (the bucket's prefix downloaded)."""
    head = current_head(log)
    assert head is not None
    (folder / log.log_id).mkdir(parents=True, exist_ok=True)
    (folder / log.log_id / f"{head.seq:012d}.json").write_bytes(canonical_json(head.to_json()))


_COPY_COLUMNS = "conversation_id, recording_id, snapshot_sha256, audio_sha256, status, recorded_at, prev_hash, hash, document_sha256, call_started"
TAMPERING = [
    ("delete-a-document", "DELETE FROM documents WHERE seq = 7", 7, "document-missing"),
    (
        "replace-a-document-with-another-valid-one",
        "UPDATE documents SET document = (SELECT document FROM documents WHERE seq = 8) WHERE seq = 7",
        7,
        "document-altered",
    ),
    (
        "edit-a-document",
        "UPDATE documents SET document = replace(document, '2.07', '2.5') WHERE seq = 7",
        7,
        "document-altered",
    ),
    (
        "swap-two-documents",
        "UPDATE documents SET seq = -1 WHERE seq = 5; UPDATE documents SET seq = 5 WHERE seq = 6; "
        "UPDATE documents SET seq = 6 WHERE seq = -1",
        5,
        "document-altered",
    ),
    (
        "move-a-document-out-of-the-period",
        "UPDATE documents SET call_started = '1999-01-01T00:00:00.000000Z' WHERE seq = 7",
        7,
        "document-altered",
    ),
    (
        "move-a-record-out-of-the-period",
        "UPDATE evidence SET call_started = '1999-01-01T00:00:00.000000Z' WHERE seq = 7",
        7,
        "edited",
    ),
    (
        "unbind-and-delete-a-document",
        "UPDATE evidence SET document_sha256 = NULL, call_started = NULL WHERE seq = 7; DELETE FROM documents WHERE seq = 7",
        7,
        "edited",
    ),
    ("delete-a-record", "DELETE FROM evidence WHERE seq = 7", 7, "deleted"),
    (
        "delete-a-record-and-its-document",
        "DELETE FROM evidence WHERE seq = 7; DELETE FROM documents WHERE seq = 7",
        7,
        "deleted",
    ),
    (
        "delete-the-first-record",
        "DELETE FROM evidence WHERE seq = 1; DELETE FROM documents WHERE seq = 1",
        1,
        "deleted",
    ),
    (
        "delete-and-renumber",
        "DELETE FROM evidence WHERE seq = 7; DELETE FROM documents WHERE seq = 7; "
        "UPDATE evidence SET seq = seq - 1 WHERE seq > 7; UPDATE documents SET seq = seq - 1 WHERE seq > 7",
        7,
        "deleted",
    ),
    (
        "swap-two-records",
        "UPDATE evidence SET seq = -1 WHERE seq = 5; UPDATE evidence SET seq = 5 WHERE seq = 6; "
        "UPDATE evidence SET seq = 6 WHERE seq = -1",
        5,
        "reordered",
    ),
    (
        "duplicate-a-record-at-the-end",
        f"INSERT INTO evidence SELECT 22, {_COPY_COLUMNS} FROM evidence WHERE seq = 4; "
        "INSERT INTO documents SELECT 22, conversation_id, call_started, document FROM documents WHERE seq = 4",
        22,
        "duplicated",
    ),
    (
        "a-document-no-record-keeps",
        "INSERT INTO documents VALUES (21, 'c3', '2026-08-01T00:00:00.000000Z', '{}')",
        21,
        "document-unbound",
    ),
    (
        "a-document-with-no-record",
        "INSERT INTO documents VALUES (99, 'x', '2026-08-01T00:00:00.000000Z', '{}')",
        99,
        "document-unbound",
    ),
    ("change-the-log-id", "UPDATE evidence_log SET id = '0123456789abcdef0123456789abcdef'", 1, "edited"),
    ("remove-the-log-identity", "DROP TABLE evidence_log", 1, "edited"),
    ("two-log-identities", "INSERT INTO evidence_log SELECT * FROM evidence_log", 1, "edited"),
    ("pretend-records-are-format-2", "UPDATE evidence_log SET legacy_end = 5", 1, "edited"),
]


@pytest.mark.parametrize(("script", "seq", "kind"), [c[1:] for c in TAMPERING], ids=[c[0] for c in TAMPERING])
def test_verify_and_search_name_the_same_first_break(tmp_path: Path, script: str, seq: int, kind: str) -> None:
    path = build(tmp_path / "runtime.db")
    assert verify(path).intact
    sql(path, script)
    report = verify(path)
    assert report.broken is not None, "the tampering went unnoticed"
    assert (report.broken.seq, report.broken.kind) == (seq, kind), report.broken.detail
    found = search(path, parse_terms(["status"]))
    assert found.chain == report, "search runs the very verification evidence verify runs"
    assert not found.intact


@pytest.mark.parametrize(
    ("script", "seq", "kind"),
    [c[1:] for c in TAMPERING if c[0] in ("delete-a-document", "swap-two-records", "change-the-log-id")],
    ids=["delete-a-document", "swap-two-records", "change-the-log-id"],
)
def test_both_commands_exit_2_naming_the_same_seq(tmp_path: Path, script: str, seq: int, kind: str) -> None:
    path = build(tmp_path / "runtime.db")
    sql(path, script)
    runner = CliRunner()
    checked = runner.invoke(cli, ["evidence", "verify", "--db", str(path), "--format", "json"])
    searched = runner.invoke(cli, ["search", "status", "--db", str(path), "--format", "json"])
    assert (checked.exit_code, searched.exit_code) == (2, 2), checked.output + searched.output
    assert json.loads(checked.output)["break"] == json.loads(searched.output)["chain"]["break"]
    assert (json.loads(checked.output)["break"]["seq"], json.loads(checked.output)["break"]["kind"]) == (seq, kind)


def test_the_reported_example_through_the_console_script(recon: Recon, tmp_path: Path) -> None:
    """The issue's case: one of 20 documents deleted. Both commands now say so, with exit 2."""
    path = build(tmp_path / ".recon" / "runtime.db")
    sql(path, "DELETE FROM documents WHERE seq = 7")
    checked = recon("evidence", "verify")
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "TAMPERED at seq 7: document-missing" in checked.stdout
    searched = recon("search", "market_snapshot.commodity=Natural_Gas_Hub")
    assert searched.returncode == 2, searched.stdout + searched.stderr
    assert "19 of the 20 stamped call(s) the chain binds in the period read" in searched.stdout
    assert "1 document(s) MISSING" in searched.stdout
    assert "evidence log TAMPERED at seq 7: document-missing" in searched.stdout
    as_csv = recon("search", "status", "--format", "csv")
    assert as_csv.returncode == 2 and "TAMPERED at seq 7" in as_csv.stderr
    assert ",missing" in as_csv.stdout


def test_an_intact_log_searches_with_exit_0(recon: Recon, tmp_path: Path) -> None:
    build(tmp_path / ".recon" / "runtime.db")
    searched = recon("search", "status", "--from", "2026-08-01", "--to", "2026-08-01")
    assert searched.returncode == 0, searched.stdout + searched.stderr
    assert "20 of the 20 stamped call(s)" in searched.stdout and "evidence log intact: 21 records" in searched.stdout


# -- the tail, rollbacks and heads -----------------------------------------------------------


def test_a_cut_tail_is_bracketed_by_the_published_heads(recon: Recon, tmp_path: Path) -> None:
    path = tmp_path / ".recon" / "runtime.db"
    heads = tmp_path / "heads"
    with EvidenceLog(path) as log:
        stamp(log, 1, 10)
        save_head(log, heads)
        stamp(log, 11, 20)
        save_head(log, heads)
    sql(path, "DELETE FROM evidence WHERE seq >= 16; DELETE FROM documents WHERE seq >= 16")
    assert recon("evidence", "verify").returncode == 0, "what is left is consistent: only a head shows the cut"
    result = recon("evidence", "verify", "--heads-dir", "heads")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TAMPERED at seq 16: head-mismatch" in result.stdout and "records 16..20 were deleted" in result.stdout
    searched = recon("search", "status", "--heads-dir", "heads")
    assert searched.returncode == 2 and "TAMPERED at seq 16: head-mismatch" in searched.stdout


def test_an_older_copy_of_the_whole_file_is_caught_by_a_later_head(tmp_path: Path) -> None:
    path, older = tmp_path / "runtime.db", tmp_path / "older.db"
    with EvidenceLog(path) as log:
        stamp(log, 1, 10)
        first = current_head(log)
    shutil.copy(path, older)  # closed: the write-ahead log is checkpointed into the file
    with EvidenceLog(path) as log:
        stamp(log, 11, 20)
        second = current_head(log)
    assert first is not None and second is not None
    shutil.copy(older, path)
    report = verify(path, [first, second])
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (11, "head-mismatch")
    assert "older copy" in report.broken.detail


def test_records_after_the_last_head_are_reported_unanchored(recon: Recon, tmp_path: Path) -> None:
    path, heads = tmp_path / ".recon" / "runtime.db", tmp_path / "heads"
    with EvidenceLog(path) as log:
        stamp(log, 1, 10)
        save_head(log, heads)
        stamp(log, 11, 13)
    result = recon("evidence", "verify", "--heads-dir", "heads", "--format", "json")
    assert result.returncode == 0
    assert json.loads(result.stdout)["unanchored"] == 3
    text = recon("evidence", "verify", "--heads-dir", "heads").stdout
    assert "3 record(s) after the last published head" in text


def test_a_head_from_another_log_is_ignored_and_an_edited_head_is_a_mismatch(recon: Recon, tmp_path: Path) -> None:
    path, heads = tmp_path / ".recon" / "runtime.db", tmp_path / "heads"
    with EvidenceLog(path) as log, EvidenceLog(tmp_path / "other.db") as other:
        stamp(log, 1, 5)
        stamp(other, 1, 5)
        save_head(log, heads)
        save_head(other, heads)  # same seq, another log: not evidence about this one
        mine = heads / log.log_id / "000000000005.json"
    result = recon("evidence", "verify", "--heads-dir", "heads", "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (json.loads(result.stdout)["heads_checked"], json.loads(result.stdout)["heads_ignored"]) == (1, 1)
    body = json.loads(mine.read_bytes())
    mine.write_text(json.dumps({**body, "hash": "e" * 64}))
    edited = recon("evidence", "verify", "--heads-dir", "heads")
    assert edited.returncode == 2 and "TAMPERED at seq 5: head-mismatch" in edited.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"not json", "is not an evidence chain head", id="not-json"),
        pytest.param(b'{"seq": 0, "hash": "x"}', "seq must be a whole number from 1", id="seq-zero"),
        pytest.param(b'{"seq": 1, "hash": "XYZ", "recorded_at": "t", "records": 1}', "64 lowercase hex", id="bad-hash"),
        pytest.param(b"[" * 100_000, "larger than the limit", id="too-large"),
        pytest.param(b"[" * 1000, "is not an evidence chain head", id="too-deep"),
        pytest.param(
            json.dumps({"seq": 1, "hash": "a" * 64, "recorded_at": "t", "records": 1, "log": "../../x"}).encode(),
            "log must be a log id",
            id="log-id-not-an-id",
        ),
    ],
)
def test_a_heads_folder_file_that_is_not_a_head_is_an_error(
    recon: Recon, tmp_path: Path, content: bytes, message: str
) -> None:
    build(tmp_path / ".recon" / "runtime.db")
    (tmp_path / "heads").mkdir()
    (tmp_path / "heads" / "000000000001.json").write_bytes(content)
    result = recon("evidence", "verify", "--heads-dir", "heads")
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "heads/000000000001.json" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_heads_folder_entry_that_is_not_a_file_is_an_error(recon: Recon, tmp_path: Path) -> None:
    build(tmp_path / ".recon" / "runtime.db")
    (tmp_path / "heads").mkdir()
    (tmp_path / "heads" / "000000000001.json").symlink_to("/dev/zero")
    result = recon("evidence", "verify", "--heads-dir", "heads")
    assert result.returncode == 1 and "heads/000000000001.json" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- heads in a bucket ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    with moto_server() as url:
        client = boto3.client(
            "s3", endpoint_url=url, region_name="eu-west-1", aws_access_key_id="t", aws_secret_access_key="t"
        )
        yield client
        client.close()


_names = iter(range(1, 1000))


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"thinning-{next(_names):03d}"
    s3.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}, ObjectLockEnabledForBucket=True
    )
    return name


def test_two_logs_publishing_to_one_bucket_keep_apart(tmp_path: Path, s3: Any, bucket: str) -> None:
    with EvidenceLog(tmp_path / "a.db") as a, EvidenceLog(tmp_path / "b.db") as b:
        for log in (a, b):
            stamp(log, 1, 5)
            publish_head(log, s3, bucket)
            stamp(log, 6, 8)
            publish_head(log, s3, bucket)
        ids = (a.log_id, b.log_id)
    for path, log_id, other in ((tmp_path / "a.db", ids[0], ids[1]), (tmp_path / "b.db", ids[1], ids[0])):
        published = read_heads(s3, bucket, log_id)
        assert [h.seq for h in published.heads] == [5, 8] and published.others == {other: 2}
        report = verify(path, published.heads)
        assert report.intact, report.broken  # seq-keyed heads overwrote each other and raised false alarms
        assert report.heads_checked == 2


def test_a_publisher_alerts_a_log_cut_below_its_published_head(tmp_path: Path, s3: Any, bucket: str) -> None:
    path = tmp_path / "runtime.db"
    with EvidenceLog(path) as log:
        stamp(log, 1, 6)
        publish_head(log, s3, bucket)
    sql(path, "DELETE FROM evidence WHERE seq >= 5; DELETE FROM documents WHERE seq >= 5")
    with EvidenceLog(path) as log:  # the runtime starts again on the cut file
        errors: list[ReconError] = []
        publisher = HeadPublisher(log, s3, bucket, on_error=errors.append)
        assert publisher.publish_safely(only_when_due=True) is None
        assert len(errors) == 1 and "ends at seq 4" in errors[0].message and "000000000006.json" in errors[0].message
        stamp(log, 5, 6)  # re-grown to the published seq with other records
        with pytest.raises(ReconError, match="no longer matches the chain head published"):
            publish_head(log, s3, bucket)


def test_the_writer_stops_once_a_record_it_wrote_is_cut_behind_it(tmp_path: Path) -> None:
    path = tmp_path / "runtime.db"
    with EvidenceLog(path) as log:
        stamp(log, 1, 5)
        sql(path, "DELETE FROM evidence WHERE seq = 5; DELETE FROM documents WHERE seq = 5")
        with pytest.raises(ReconError, match="record 5, which this runtime appended, is gone or changed"):
            stamp(log, 6, 6)
        assert log.count() == 4, "nothing was appended to the cut log"
    with EvidenceLog(path) as other, EvidenceLog(path) as mine:  # another writer appending is fine
        stamp(mine, 5, 5)
        stamp(other, 6, 6)
        stamp(mine, 7, 7)
    assert verify(path).intact


# -- format 2 (before issue 17): read, upgraded, then thinned ----------------------------------

V2_SCHEMA = """
CREATE TABLE evidence (seq INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, recording_id TEXT NOT NULL,
    snapshot_sha256 TEXT NOT NULL, audio_sha256 TEXT NULL, status TEXT NOT NULL, recorded_at TEXT NOT NULL,
    prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE documents (seq INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, call_started TEXT NOT NULL,
    document TEXT NOT NULL);
PRAGMA user_version = 2;
"""


def format_2_log(path: Path, calls: int = 5) -> Path:
    """A log as recon wrote it before issue 17, built from that format's own description:
    hash = SHA-256(prev_hash || canonical content), record 1 after 64 zeros, no log id."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.executescript(V2_SCHEMA)
    prev = "0" * 64
    for seq in range(1, calls + 2):
        audio = seq == calls + 1
        text = document(seq).decode()
        digest = "a" * 64 if audio else hashlib.sha256(text.encode()).hexdigest()
        content = {
            "seq": seq,
            "conversation_id": "c1" if audio else f"c{seq}",
            "recording_id": f"r{seq}",
            "snapshot_sha256": digest,
            "audio_sha256": "b" * 64 if audio else None,
            "status": "audio_archived" if audio else "attached",
            "recorded_at": f"2026-08-01T10:00:{seq:02d}.000000Z",
        }
        body = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest_hash = hashlib.sha256(prev.encode() + body.encode()).hexdigest()
        db.execute(
            "INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*content.values(), prev, digest_hash),
        )
        if not audio:
            db.execute(
                "INSERT INTO documents VALUES (?, ?, ?, ?)",
                (seq, f"c{seq}", f"2026-08-01T09:{seq:02d}:00.000000Z", text),
            )
        prev = digest_hash
    db.commit()
    db.close()
    return path


def test_a_format_2_log_is_read_as_it_is_and_upgraded_in_place(recon: Recon, tmp_path: Path) -> None:
    path = format_2_log(tmp_path / ".recon" / "runtime.db")
    before = recon("evidence", "verify")
    assert before.returncode == 0, before.stdout + before.stderr
    assert "format 2, no log id" in before.stdout and "recon evidence upgrade" in before.stdout
    assert recon("search", "status").returncode == 0
    upgraded = recon("evidence", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "format 3" in upgraded.stdout and "records 1..6 sealed by record 7" in upgraded.stdout
    with EvidenceLog(path) as log:
        stamp(log, 8, 9)
    after = verify(path)
    assert after.intact and after.records == 9 and after.documents == 8  # 5 sealed, the seal's own, 2 new
    found = search(path, parse_terms(["status=attached"]))
    assert [hit.conversation_id for hit in found.hits] == ["c1", "c2", "c3", "c4", "c5", "c8", "c9"]
    assert found.hits[0].audio_sha256 == "b" * 64
    sql(path, "DELETE FROM documents WHERE seq = 3")  # a document of before the upgrade
    report = verify(path)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (3, "document-missing")
    gone = recon("search", "status")
    assert gone.returncode == 2 and "1 document(s) MISSING" in gone.stdout


@pytest.mark.parametrize(
    ("script", "seq", "kind"),
    [
        pytest.param("UPDATE documents SET document = '{}' WHERE seq = 7", 7, "document-altered", id="edit-the-seal"),
        pytest.param("DELETE FROM documents WHERE seq = 7", 7, "document-missing", id="delete-the-seal"),
        pytest.param(
            "UPDATE evidence SET call_started = NULL, document_sha256 = NULL WHERE seq = 2; "
            "DELETE FROM documents WHERE seq = 2",
            2,
            "document-missing",
            id="unbind-a-sealed-document",
        ),
        pytest.param("UPDATE evidence_log SET legacy_end = 3", 4, "edited", id="move-the-seal"),
    ],
)
def test_an_upgraded_log_binds_its_old_documents(tmp_path: Path, script: str, seq: int, kind: str) -> None:
    path = format_2_log(tmp_path / "runtime.db")
    EvidenceLog(path).close()
    assert verify(path).intact
    sql(path, script)
    report = verify(path)
    assert report.broken is not None and (report.broken.seq, report.broken.kind) == (seq, kind), report.broken


def test_a_tampered_format_2_log_is_not_upgraded(recon: Recon, tmp_path: Path) -> None:
    path = format_2_log(tmp_path / ".recon" / "runtime.db")
    sql(path, "UPDATE documents SET document = '{}' WHERE seq = 2")
    before = path.read_bytes()
    result = recon("evidence", "upgrade")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not intact (TAMPERED at seq 2: document-altered" in result.stderr
    assert "move it aside" in result.stderr and "Traceback" not in result.stderr
    assert path.read_bytes() == before, "a refused upgrade leaves the file as it was"


def test_a_format_2_logs_heads_keyed_by_seq_are_still_checked(tmp_path: Path) -> None:
    path = format_2_log(tmp_path / "runtime.db")
    (tmp_path / "heads").mkdir()
    last = sqlite3.connect(path).execute("SELECT seq, hash, recorded_at FROM evidence ORDER BY seq DESC").fetchone()
    body = {"seq": last[0], "hash": last[1], "recorded_at": last[2], "records": last[0]}
    (tmp_path / "heads" / f"{last[0]:012d}.json").write_bytes(canonical_json(body))
    sql(path, f"DELETE FROM evidence WHERE seq = {last[0]}")
    from reconciler.runtime.evidence import read_heads_dir  # noqa: PLC0415

    report = verify(path, read_heads_dir(tmp_path / "heads").heads)
    assert report.broken is not None and report.broken.kind == "head-mismatch"


# -- what --db may point at -----------------------------------------------------------------


def special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "runtime.db"
    if kind == "named-pipe":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    return path


@pytest.mark.parametrize("kind", ["named-pipe", "directory", "device"])
@pytest.mark.parametrize(
    "command",
    [["evidence", "verify"], ["evidence", "upgrade"], ["evidence", "show"], ["search", "status"]],
    ids=["verify", "upgrade", "show", "search"],
)
def test_a_db_that_is_not_a_file_is_refused_without_hanging(
    recon: Recon, tmp_path: Path, kind: str, command: list[str]
) -> None:
    path = special(tmp_path, kind)
    result = recon(*command, "--db", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("is not a regular file" if kind != "directory" else "is a directory") in result.stderr
    assert "Traceback" not in result.stderr


def test_the_writer_refuses_a_db_that_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(ReconError, match="is not a regular file"):
        EvidenceLog(special(tmp_path, "named-pipe"))


def odd_file(path: Path, kind: str) -> None:
    db = sqlite3.connect(path)
    columns = "seq INTEGER PRIMARY KEY, conversation_id, recording_id, snapshot_sha256, audio_sha256, status, recorded_at, prev_hash, hash"
    if kind == "format-1-empty":
        db.executescript(f"CREATE TABLE evidence ({columns}); PRAGMA user_version = 1;")
    elif kind == "newer-format":
        db.executescript("CREATE TABLE evidence (x); PRAGMA user_version = 9;")
    elif kind == "foreign-values":
        db.executescript(
            f"CREATE TABLE evidence ({columns}); INSERT INTO evidence VALUES (1, NULL, x'ff', 3, 4, NULL, 5, 6, 7);"
        )
    elif kind == "another-table-shape":
        db.executescript("CREATE TABLE evidence (a, b);")
    db.close()


@pytest.mark.parametrize(
    ("kind", "codes", "message"),
    [
        pytest.param("empty-sqlite-file", (1, 1, 1), "has no evidence log", id="empty-sqlite-file"),
        pytest.param("format-1-empty", (0, 0, 0), "", id="format-1-empty"),
        pytest.param("newer-format", (1, 1, 1), "newer than this recon reads", id="newer-format"),
        pytest.param("foreign-values", (2, 2, 1), "", id="foreign-values"),
        pytest.param("another-table-shape", (1, 1, 1), "is not a readable evidence", id="another-table-shape"),
    ],
)
def test_odd_files_are_errors_or_findings_never_crashes(
    tmp_path: Path, kind: str, codes: tuple[int, int, int], message: str
) -> None:
    path = tmp_path / "runtime.db"
    odd_file(path, kind)
    runner = CliRunner()
    results = [
        runner.invoke(cli, [*command, "--db", str(path)])
        for command in (["evidence", "verify"], ["search", "status"], ["evidence", "upgrade"])
    ]
    assert tuple(result.exit_code for result in results) == codes, [result.output for result in results]
    assert all(result.exception is None or isinstance(result.exception, SystemExit) for result in results)
    assert all(message in result.output for result in results if result.exit_code == 1)
