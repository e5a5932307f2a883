"""Class 1: `env:` and `file:` references read only what they may (reconciler.secretrefs).

Before: `file:PATH` was `root / PATH` read whole with `read_text`, so `file:../../../../x`,
an absolute path or a symlink read any file the CI runner could, and a named pipe or
`/dev/zero` hung or exhausted recon; `env:` names were not checked outside manifests. Now:
inside the project root or $RECON_SECRETS_DIR only, no `..`, no symlink out, regular files
of at most 64 KiB, and a `recon.yaml` whose clientSecret goes up with `..` fails validation
naming file, line and field."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler import redact
from reconciler.cli import cli
from reconciler.errors import UsageError
from reconciler.secretrefs import MAX_SECRET_BYTES, reference_problem, resolve


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    project, outside, vault = tmp_path / "project", tmp_path / "outside", tmp_path / "vault"
    for folder in (project, outside, vault, project / "secrets"):
        folder.mkdir(parents=True, exist_ok=True)
    (outside / "x").write_text("stolen-outside-value\n")
    (project / "secrets" / "token").write_text("inside-token-value\n")
    (vault / "token").write_text("vault-token-value\n")
    (project / "secrets" / "empty").write_text("\n")
    (project / "secrets" / "big").write_bytes(b"a" * (MAX_SECRET_BYTES + 1))
    (project / "secrets" / "binary").write_bytes(b"\xff\xfe\x00x")
    (project / "secrets" / "link-in").symlink_to(project / "secrets" / "token")
    (project / "secrets" / "link-out").symlink_to(outside / "x")
    (project / "secrets" / "dir-out").symlink_to(outside)
    (project / "secrets" / "zero").symlink_to("/dev/zero")
    (vault / "link-out").symlink_to(outside / "x")
    os.mkfifo(project / "secrets" / "pipe")
    return {"project": project, "outside": outside, "vault": vault}


READS = [
    pytest.param("file:secrets/token", {}, "inside-token-value", id="relative-inside"),
    pytest.param("file:./secrets/token", {}, "inside-token-value", id="dot-slash-inside"),
    pytest.param("file:secrets/link-in", {}, "inside-token-value", id="symlink-staying-inside"),
    pytest.param("file:{project}/secrets/token", {}, "inside-token-value", id="absolute-inside-project"),
    pytest.param("file:{vault}/token", {"RECON_SECRETS_DIR": "{vault}"}, "vault-token-value", id="secrets-dir"),
    pytest.param(
        "file:{vault}/token", {"RECON_SECRETS_DIR": "/nonexistent:{vault}"}, "vault-token-value", id="secrets-dir-list"
    ),
    pytest.param("env:GOOD_NAME_1", {"GOOD_NAME_1": "env-value-1"}, "env-value-1", id="env"),
]


def _fill(text: str, layout: dict[str, Path]) -> str:
    return text.format(**{k: str(v) for k, v in layout.items()})


@pytest.mark.parametrize(("reference", "environ", "value"), READS)
def test_references_that_resolve(layout: dict[str, Path], reference: str, environ: dict[str, str], value: str) -> None:
    env = {k: _fill(v, layout) for k, v in environ.items()}
    assert resolve(_fill(reference, layout), layout["project"], "clientSecret", environ=env) == value
    assert redact.scrub(f"echo {value}") == f"echo {redact.REDACTED}", "a resolved value is registered"


REFUSED = [
    pytest.param("file:../outside/x", {}, "'..'", id="dot-dot"),
    pytest.param("file:secrets/../../outside/x", {}, "'..'", id="dot-dot-in-the-middle"),
    pytest.param("file:{outside}/x", {}, "is outside", id="absolute-outside"),
    pytest.param("file:/etc/passwd", {}, "is outside", id="etc-passwd"),
    pytest.param("file:secrets/link-out", {}, "through a symlink", id="symlink-out"),
    pytest.param("file:secrets/dir-out/x", {}, "through a symlink", id="symlinked-folder-out"),
    pytest.param("file:{vault}/link-out", {"RECON_SECRETS_DIR": "{vault}"}, "outside", id="symlink-out-of-secrets-dir"),
    pytest.param(
        "file:{vault}/token", {"RECON_SECRETS_DIR": "relative/dir"}, "outside", id="relative-secrets-dir-ignored"
    ),
    pytest.param("file:secrets/zero", {}, "outside", id="symlink-to-dev-zero"),
    pytest.param("file:secrets/pipe", {}, "named pipe", id="named-pipe"),
    pytest.param("file:secrets", {}, "directory", id="directory"),
    pytest.param("file:secrets/big", {}, "larger than", id="too-large"),
    pytest.param("file:secrets/empty", {}, "empty", id="empty-file"),
    pytest.param("file:secrets/binary", {}, "UTF-8", id="not-text"),
    pytest.param("file:secrets/missing", {}, "does not exist", id="missing"),
    pytest.param("file:", {}, "needs a path", id="no-path"),
    pytest.param("file:secrets/tok\nen", {}, "control character", id="newline-in-path"),
    pytest.param("env:", {}, "environment variable", id="env-empty-name"),
    pytest.param("env:1ABC", {}, "environment variable", id="env-leading-digit"),
    pytest.param("env:A B", {}, "environment variable", id="env-space"),
    pytest.param("env:A-B", {}, "environment variable", id="env-hyphen"),
    pytest.param("env:HOME\n", {}, "environment variable", id="env-trailing-newline"),
    pytest.param("env:UNSET_VARIABLE_X", {}, "not set", id="env-unset"),
    pytest.param("env:EMPTY_VARIABLE_X", {"EMPTY_VARIABLE_X": ""}, "not set", id="env-empty-value"),
]


@pytest.mark.parametrize(("reference", "environ", "why"), REFUSED)
def test_references_that_are_refused(
    layout: dict[str, Path], reference: str, environ: dict[str, str], why: str
) -> None:
    env = {k: _fill(v, layout) for k, v in environ.items()}
    with pytest.raises(UsageError) as refused:
        resolve(_fill(reference, layout), layout["project"], "clientSecret", environ=env)
    message = str(refused.value)
    assert why in message and "clientSecret" in message
    assert "stolen-outside-value" not in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("env:OK_1", False, id="env-ok"),
        pytest.param("file:a/b.pem", False, id="file-ok"),
        pytest.param("file:/run/secrets/x", False, id="file-absolute-lexically-ok"),
        pytest.param("file:a/..data/token", False, id="dotdot-prefixed-name-is-a-name"),
        pytest.param("file:../x", True, id="file-up"),
        pytest.param("file:a\\..\\x", True, id="file-up-backslashes"),
        pytest.param("env:$X", True, id="env-dollar"),
        pytest.param("literal-value", False, id="not-a-reference"),
    ],
)
def test_lexical_check(value: str, problem: bool) -> None:
    assert (reference_problem(value) is not None) is problem


# --- end to end through the CLI -----------------------------------------------------------

QUEUE = """apiVersion: recon/v1
kind: Queue
metadata: {name: energy-desk-gas}
spec: {regulated: false, region: eu-west-1, clientRegion: EU, description: gas desk}
"""


def _project(root: Path, genesys: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "recon.yaml").write_text(f"target: prod\ntargets:\n  prod:\n    genesys: {genesys}\n")
    (root / "queue.yaml").write_text(QUEUE)


def _no_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    connects: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        connects.append(address)
        raise OSError("the test allows no connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return connects


@pytest.mark.parametrize("command", ["validate", "plan"])
def test_recon_yaml_reference_going_up_is_refused_at_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    root = tmp_path / "a" / "b" / "desk"
    (tmp_path / "x").write_text("stolen-outside-value\n")
    _project(
        root, "{region: eu-west-1, clientId: recon, clientSecret: 'file:../../../x', apiUrl: 'https://api.example'}"
    )
    connects = _no_connections(monkeypatch)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, [command, str(root)])
    assert result.exit_code == 1, result.output
    assert "recon.yaml:4:" in result.output and "targets.prod.genesys.clientSecret" in result.output
    assert "'..'" in result.output and "stolen-outside-value" not in result.output
    assert connects == [], "refused before anything was sent"


def test_recon_yaml_symlink_out_is_refused_when_resolved_and_nothing_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "desk"
    (tmp_path / "x").write_text("stolen-outside-value\n")
    _project(root, "{region: eu-west-1, clientId: recon, clientSecret: 'file:secret', apiUrl: 'https://api.example'}")
    (root / "secret").symlink_to(tmp_path / "x")
    connects = _no_connections(monkeypatch)
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["plan", str(root)])
    assert result.exit_code == 1, result.output
    assert "clientSecret refers to file:secret, which leads (through a symlink) outside" in result.output
    assert "RECON_SECRETS_DIR" in result.output and "stolen-outside-value" not in result.output
    assert connects == []


def test_recon_yaml_client_id_reference_must_name_a_variable(tmp_path: Path) -> None:
    root = tmp_path / "desk"
    _project(root, "{region: eu-west-1, clientId: 'env:MY ID', clientSecret: 'env:S'}")
    result = CliRunner().invoke(cli, ["validate", str(root)])
    assert result.exit_code == 1, result.output
    assert "recon.yaml:4:" in result.output and "targets.prod.genesys.clientId" in result.output


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("token", "file:../../token", id="collector-token-up"),
        pytest.param("token", "'env:TOKEN\\n'", id="collector-token-newline"),
    ],
)
def test_manifest_references_are_checked_at_validation(tmp_path: Path, field: str, value: str) -> None:
    root = tmp_path / "desk"
    root.mkdir()
    (root / "recon.yaml").write_text("target: sandbox\n")
    (root / "topology.yaml").write_text(
        "apiVersion: recon/v1\nkind: CollectorTopology\nmetadata: {name: floor}\nspec:\n"
        "  dataSource: {type: bt-trading-enterprise, switch: ldn-01}\n"
        "  collectors:\n"
        "    - name: c1\n"
        "      endpoints: {primary: 'wss://tradesense.example/wba'}\n"
        f'      {field}: "{value}"\n'
        "      pollInterval: 10s\n"
        "      traders: [{id: T-1, user: a@b.example, turret: TUR-1}]\n"
        "  matching: {startTolerance: 5s, durationTolerance: 5s, lateRecordingGrace: 10m}\n"
        "  target: 99.9%\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(root)])
    assert result.exit_code == 1, result.output
    assert "topology.yaml:9:" in result.output and f"spec.collectors[0].{field}" in result.output
