"""`recon search` end to end: calls stamped by `recon runtime --once` on the sandbox are found
by the auditor's query (the seeds' `market_snapshot.commodity=Natural_Gas_Hub`), by price and
by period, in table, JSON and CSV; a bad term is a usage error naming it; a document edited
in the store is reported as tampered with exit 2."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from pathlib import Path

from conftest import Recon
from test_cli_genesys import ok
from test_cli_runtime import calls_just_now, desk  # noqa: F401 (the desk fixture)

QUERY = "market_snapshot.commodity=Natural_Gas_Hub"


def test_the_auditors_question(recon: Recon, desk: Path) -> None:  # noqa: F811
    _, made = calls_just_now(recon, desk, 3)
    ok(recon("runtime", "--once", "--since", "10m", cwd=desk))
    today = dt.datetime.now(dt.UTC).date()
    period = ("--from", (today - dt.timedelta(days=1)).isoformat(), "--to", today.isoformat())

    table = ok(recon("search", QUERY, *period, cwd=desk)).stdout
    assert all(conversation in table for conversation in made)
    assert "(Natural_Gas_Hub)" in table and f"3 call(s) match {QUERY}" in table

    answer = json.loads(
        ok(recon("search", QUERY, "market_snapshot.commodity>0", *period, "--format", "json", cwd=desk)).stdout
    )
    assert {call["conversationId"] for call in answer["calls"]} == set(made)
    assert all(call["marketSnapshot"]["instruments"]["commodity"] == "Natural_Gas_Hub" for call in answer["calls"])
    assert all(call["integrity"] == "ok" for call in answer["calls"]) and answer["tampered"] == 0

    rows = list(csv.DictReader(io.StringIO(ok(recon("search", QUERY, "--format", "csv", cwd=desk)).stdout)))
    assert {row["conversation_id"] for row in rows} == set(made)
    assert {row["commodity.instrument"] for row in rows} == {"Natural_Gas_Hub"}
    assert all(float(row["commodity"]) > 0 for row in rows)

    earlier = ok(recon("search", QUERY, "--from", "2026-07-01", "--to", "2026-09-30", cwd=desk)).stdout
    assert "0 call(s) match" in earlier, "calls outside the period are not listed"
    none = ok(recon("search", "market_snapshot.commodity=Brent", cwd=desk)).stdout
    assert "0 call(s) match" in none

    bad = recon("search", "market_snapshot.commodity>cheap", cwd=desk)
    assert bad.returncode == 1 and "market_snapshot.commodity>cheap" in bad.stderr

    with sqlite3.connect(desk / ".recon" / "runtime.db") as raw:
        raw.execute("UPDATE documents SET document = replace(document, 'Natural_Gas_Hub', 'Brent') WHERE seq = 2")
    tampered = recon("search", QUERY, cwd=desk)
    assert tampered.returncode == 2, tampered.stdout + tampered.stderr
    assert "TAMPERED" in tampered.stdout and "2 call(s) match" in tampered.stdout


def test_calls_from_the_simulated_floor_are_stamped_and_found(recon: Recon, desk: Path) -> None:  # noqa: F811
    ok(recon("sandbox", "up", cwd=desk))
    placed = ok(
        recon(
            "sandbox", "floor", "--queues", "energy-desk-gas", "--count", "12", "--rate", "20", "--seed", "7", cwd=desk
        )
    )
    assert "12 calls placed on energy-desk-gas: 12 recordings" in placed.stdout, placed.stdout
    stamped = ok(recon("runtime", "--once", "--since", "30m", cwd=desk))
    assert stamped.stdout.startswith("12 call(s) stamped: 12 attached"), stamped.stdout
    found = json.loads(ok(recon("search", QUERY, "--format", "json", cwd=desk)).stdout)
    assert len(found["calls"]) == 12 and found["scanned"] == 12
    refused = recon("sandbox", "floor", "--queues", "no-such-desk", "--count", "1", cwd=desk)
    assert refused.returncode == 1 and "no-such-desk" in refused.stderr, refused.stderr
