"""Issue 17, class 7 on the command line: names, addresses and ids given as arguments are
checked whole, like the manifests' (reconciler.manifest.kinds.text), before the command
reads or writes anything. An object id ends up in an API path (`/routing/queues/{id}`), so
`recon import Queue/q ../../users/me` must not reach a provider; a name with a trailing
newline or a zero-width space is not the resource it looks like."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.conftest import Recon

CASES = [
    # (args, the argument or option named, what the message says)
    (["import", "Queue/energy-desk-gas\n", "queue-1"], "KIND/NAME", "is not a resource address: contains a line break"),
    (["import", "Queue/energy-desk-gas\u200b", "queue-1"], "KIND/NAME", "invisible character U+200B"),
    (["import", "queue/energy-desk-gas", "queue-1"], "KIND/NAME", "is not a resource address"),
    (["import", "Queue/energy-desk-gas", "../../users/me"], "ID", "is not a platform object id"),
    (["import", "Queue/energy-desk-gas", "queue 1"], "ID", "is not a platform object id"),
    (["import", "Queue/energy-desk-gas", "queue-1?x=1"], "ID", "is not a platform object id"),
    (["import", "Queue/energy-desk-gas", "queue-1\n"], "ID", "contains a line break"),
    (["import", "Queue/energy-desk-gas", "x" * 300], "ID", "is not a platform object id"),
    (["state", "show", "Queue/energy-desk-gas "], "KIND/NAME", "starts or ends with whitespace"),
    (["force-unlock", "../lock"], "ID", "is not a platform object id"),
    (["verify-archive", "--bucket", "trading-archive-eu\n"], "--bucket", "contains a line break"),
    (["evidence", "verify", "--heads", "--bucket", "Trading-Archive"], "--bucket", "is not a valid name"),
    (["verify", "--from", "2026-11-01", "--to", "2026-11-02", "--topology", "bt-trading-london\u202e"], "--topology",
     "bidirectional-text control U+202E"),
    (["runtime", "--once", "--heads-bucket", "archive\u0430"], "--heads-bucket", "not ASCII"),
    (["triage", "set", "not_recorded:CDR-1", "--tag", "test-call", "--note", "ok", "--by", "jane\u202e"], "--by",
     "bidirectional-text control"),
    (["triage", "set", "not_recorded:CDR-1", "--tag", "test-call", "--note", "clear\x1b[2J", "--by", "jane"], "--note",
     "control character U+001B"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "named", "message"), CASES, ids=[repr(c[0][:3])[:70] for c in CASES])
def test_a_lookalike_argument_is_refused(args: list[str], named: str, message: str, tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = CliRunner().invoke(cli, args, standalone_mode=False)
    error = result.exception
    assert isinstance(error, click.BadParameter), (args, repr(error), result.output)
    said = error.format_message()
    assert named in said and message in said, said
    assert list(tmp_path.iterdir()) == [], "nothing is written"


def test_recon_import_exits_1_before_reading_anything(recon: Recon, tmp_path: Path) -> None:
    result = recon("import", "Queue/energy-desk-gas", "../../users/me")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Invalid value for 'ID'" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
