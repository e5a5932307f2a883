"""`recon triage set|clear|list`: a set/list/clear round trip on a store in the temporary folder,
JSON output, the --history trail, and the refusals (bad tag naming the choices, bad key, no
reviewer), each exit 1 with a message saying what to do.

In-process through click's CliRunner, as `reconciler.cli.main` runs the group (click's own usage
errors become exit 1); one test drives the real console script to prove that exit code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from conftest import Recon

from reconciler.cli import cli
from reconciler.errors import EXIT_ERROR

KEY = "not_recorded:CDR-1234"
TAGS = ("missing-recording", "missing-cdr", "false-positive", "test-call", "maintenance-window")


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def triage(*args: str) -> Ran:
    """`recon triage ARGS...` in-process, as reconciler.cli.main runs it: a click usage error is
    shown on stderr with exit 1."""
    result = CliRunner().invoke(cli, ["triage", *args], standalone_mode=False)
    error = result.exception
    if isinstance(error, click.ClickException):
        return Ran(EXIT_ERROR, result.stdout, result.stderr + error.format_message())
    if error is not None and not isinstance(error, SystemExit):
        raise error
    return Ran(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "state" / "runtime.db")


def test_set_list_clear_round_trip(db: str) -> None:
    assert triage("list", "--db", db).stdout == "no triage tags\n"
    assert not Path(db).exists(), "list does not create the store"

    done = triage("set", KEY, "--tag", "test-call", "--note", "desk test at 09:00", "--by", "ann", "--db", db)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{KEY} tagged test-call by ann\n"
    assert (
        triage(
            "set", "partial:CDR-9", "--tag", "missing-recording", "--note", "cut", "--by", "bob", "--db", db
        ).returncode
        == 0
    )

    table = triage("list", "--db", db).stdout.splitlines()
    assert table[0].split() == ["KEY", "TAG", "REVIEWER", "AT", "NOTE"]
    assert table[1].startswith(KEY) and "test-call" in table[1] and "ann" in table[1]
    assert table[1].endswith("desk test at 09:00")
    assert "partial:CDR-9" in table[2] and "missing-recording" in table[2]

    cleared = triage("clear", KEY, "--note", "not a test call", "--by", "carl", "--db", db)
    assert cleared.returncode == 0, cleared.stderr
    assert cleared.stdout == f"{KEY} cleared by carl\n"
    remaining = triage("list", "--db", db).stdout
    assert KEY not in remaining and "partial:CDR-9" in remaining

    again = triage("clear", KEY, "--note", "twice", "--by", "carl", "--db", db)
    assert again.returncode == 1 and "no triage tag to clear" in again.stderr and "recon triage list" in again.stderr


def test_the_store_defaults_to_the_project_folder(tmp_path: Path) -> None:
    args = ("--project-dir", str(tmp_path))
    assert triage("set", KEY, "--tag", "false-positive", "--note", "n", "--by", "ann", *args).returncode == 0
    assert (tmp_path / ".recon" / "runtime.db").is_file()
    assert KEY in triage("list", *args).stdout


def test_list_json(db: str) -> None:
    assert json.loads(triage("list", "--format", "json", "--db", db).stdout) == []
    triage("set", KEY, "--tag", "maintenance-window", "--note", "CHG-881", "--by", "ann", "--db", db)
    triage(
        "set", "recorded_without_cdr:rec-7", "--tag", "missing-cdr", "--note", "switch gap", "--by", "bob", "--db", db
    )
    rows = json.loads(triage("list", "--format", "json", "--db", db).stdout)
    assert [(r["key"], r["tag"], r["excludes"], r["reviewer"], r["note"]) for r in rows] == [
        (KEY, "maintenance-window", True, "ann", "CHG-881"),
        ("recorded_without_cdr:rec-7", "missing-cdr", False, "bob", "switch gap"),
    ]
    assert all(r["at"].endswith("Z") for r in rows)


def test_history_shows_the_clear(db: str) -> None:
    triage("set", KEY, "--tag", "false-positive", "--note", "wrong", "--by", "ann", "--db", db)
    triage("set", KEY, "--tag", "missing-recording", "--note", "really lost", "--by", "bob", "--db", db)
    triage("clear", KEY, "--note", "re-check after the fix", "--by", "carl", "--db", db)

    table = triage("list", "--history", "--db", db).stdout.splitlines()
    assert len(table) == 4
    assert ["false-positive" in table[1], "missing-recording" in table[2], "(cleared)" in table[3]] == [True] * 3
    assert "carl" in table[3] and table[3].endswith("re-check after the fix")
    assert triage("list", "--db", db).stdout == "no triage tags\n"

    events = json.loads(triage("list", "--history", "--format", "json", "--db", db).stdout)
    assert [(e["tag"], e["reviewer"]) for e in events] == [
        ("false-positive", "ann"),
        ("missing-recording", "bob"),
        (None, "carl"),
    ]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_bad_tag_names_the_choices(db: str) -> None:
    bad = triage("set", KEY, "--tag", "lost", "--note", "n", "--by", "ann", "--db", db)
    assert bad.returncode == 1
    assert all(tag in bad.stderr for tag in TAGS), bad.stderr
    assert not Path(db).exists()


@pytest.mark.parametrize(
    ("key", "tag", "message"),
    [
        pytest.param("pending:CDR-1", "test-call", "no verdict yet", id="pending-is-not-triaged"),
        pytest.param("missed:CDR-1", "test-call", "not a verdict", id="unknown-verdict"),
        pytest.param("CDR-1", "test-call", "write <verdict>:<id>", id="no-verdict"),
        pytest.param(KEY, "missing-cdr", "use one of missing-recording", id="tag-does-not-fit"),
    ],
)
def test_bad_key_or_unfitting_tag(db: str, key: str, tag: str, message: str) -> None:
    bad = triage("set", key, "--tag", tag, "--note", "n", "--by", "ann", "--db", db)
    assert bad.returncode == 1 and message in bad.stderr, bad.stderr
    assert "next:" in bad.stderr and bad.stdout == ""


def test_blank_note_is_refused(db: str) -> None:
    bad = triage("set", KEY, "--tag", "test-call", "--note", " ", "--by", "ann", "--db", db)
    assert bad.returncode == 1 and "note is empty" in bad.stderr and "auditor" in bad.stderr


def test_reviewer_defaults_to_the_user(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.setenv("USERNAME", "winuser")
    assert (
        triage("set", KEY, "--tag", "test-call", "--note", "n", "--db", db).stdout
        == f"{KEY} tagged test-call by winuser\n"
    )
    monkeypatch.setenv("USER", "unixuser")
    assert "by unixuser" in triage("clear", KEY, "--note", "n", "--db", db).stdout


def test_missing_reviewer_asks_for_by(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("USER", raising=False)
    monkeypatch.delenv("USERNAME", raising=False)
    for args in (("set", KEY, "--tag", "test-call"), ("clear", KEY)):
        bad = triage(*args, "--note", "n", "--db", db)
        assert bad.returncode == 1 and "--by" in bad.stderr, bad.stderr
    assert not Path(db).exists()


def test_console_script_exits_1_on_a_bad_tag(recon: Recon, tmp_path: Path) -> None:
    bad = recon("triage", "set", KEY, "--tag", "lost", "--note", "n", "--by", "ann")
    assert bad.returncode == 1 and "missing-recording" in bad.stderr
    assert not (tmp_path / ".recon").exists()
