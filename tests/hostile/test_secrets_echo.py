"""Class 1: a value that fails validation is not echoed when it looks like a secret or came
through a secret reference.

Before, validators quoted the value they refused ("'<value>' is not a valid name", "... is not
a Genesys Cloud region", "'<url>' is not a valid URL here") and the literal check quoted
anything up to 64 characters, so a token pasted into the wrong field was printed in the CI log
by the very error that refused it (the scanner's own message did not echo, the schema error
next to it did). Now explain.py replaces such a value with a placeholder, URL errors never
show more than scheme://host, and values resolved from references are scrubbed everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.manifest.secrets_scan import looks_like_secret, unsafe_to_echo

GITHUB = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
RANDOM = "Zx9kQ2mP7vL4nR8tY1wB6cD3fG5hJ0aS"
SLACK_HOOK = "https://hooks.slack.com/services/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"

FEED = """apiVersion: recon/v1
kind: MarketDataFeed
metadata: {{name: {name}}}
spec:
  provider: {provider}
  url: "{url}"
  instruments: [{{symbol: EURUSD, field: mid, as: eurusd}}]
  appliesTo: {{queues: [fx-spot]}}
"""


def _validate(tmp_path: Path, files: dict[str, str]) -> str:
    root = tmp_path / "desk"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(root)])
    assert result.exit_code == 1, result.output
    return result.output


@pytest.mark.parametrize(
    ("name", "provider", "url", "secret"),
    [
        pytest.param(GITHUB.lower(), "generic-rest", "https://feed.example/v1", GITHUB.lower(), id="token-as-name"),
        pytest.param("fx", RANDOM, "https://feed.example/v1", RANDOM, id="random-token-as-provider"),
        pytest.param(
            "fx", "generic-rest", f"https://feed.example/v1?apikey={RANDOM}\\n", RANDOM, id="token-in-url-query"
        ),
        pytest.param("fx", "generic-rest", f"ftp://{RANDOM}@feed.example/", RANDOM, id="token-as-url-user"),
        pytest.param("fx", "generic-rest", f"http://feed.example/{RANDOM}", RANDOM, id="token-in-url-path"),
        pytest.param("fx", "generic-rest", SLACK_HOOK.replace("https", "http"), "a1b2c3d4e5f6g7h8", id="webhook-url"),
    ],
)
def test_a_refused_manifest_value_that_looks_like_a_secret_is_not_echoed(
    tmp_path: Path, name: str, provider: str, url: str, secret: str
) -> None:
    output = _validate(tmp_path, {"recon.yaml": "target: sandbox\n", "feed.yaml": FEED.format(**locals())})
    assert "feed.yaml:" in output
    assert secret not in output


@pytest.mark.parametrize(
    ("genesys", "secret"),
    [
        pytest.param(f"{{region: '{RANDOM}', clientId: x, clientSecret: env:S}}", RANDOM, id="token-as-region"),
        pytest.param(f"{{region: eu-west-1, clientId: x, clientSecret: '{RANDOM}'}}", RANDOM, id="literal-secret"),
        pytest.param(
            f"{{region: eu-west-1, clientId: x, clientSecret: env:S, apiUrl: 'https://u:{RANDOM}@api.example'}}",
            RANDOM,
            id="password-in-api-url",
        ),
        pytest.param(
            f"{{region: eu-west-1, clientId: x, clientSecret: env:S, loginUrl: 'http://login.example/?k={RANDOM}'}}",
            RANDOM,
            id="plain-http-login-url-with-key",
        ),
    ],
)
def test_a_refused_recon_yaml_value_is_not_echoed(tmp_path: Path, genesys: str, secret: str) -> None:
    output = _validate(tmp_path, {"recon.yaml": f"target: prod\ntargets:\n  prod:\n    genesys: {genesys}\n"})
    assert "recon.yaml:4:" in output
    assert secret not in output


def test_a_webhook_url_from_a_reference_is_not_echoed_when_refused(tmp_path: Path) -> None:
    root = tmp_path / "desk"
    root.mkdir()
    (root / "recon.yaml").write_text("target: sandbox\n")
    (root / "feed.yaml").write_text(FEED.format(name="fx", provider="generic-rest", url="https://feed.example/v1"))
    (root / "queue.yaml").write_text(
        "apiVersion: recon/v1\nkind: Queue\nmetadata: {name: fx-spot}\n"
        "spec: {regulated: false, region: eu-west-1, clientRegion: EU}\n"
    )
    hook = SLACK_HOOK.replace("https://", "http://")
    result = CliRunner().invoke(
        cli, ["runtime", str(root), "--once", "--alert-webhook", "env:HOOK"], env={"HOOK": hook}
    )
    assert result.exit_code == 1, result.output
    assert "cleartext" in result.output and "http://hooks.slack.com" in result.output
    assert "a1b2c3d4e5f6g7h8" not in result.output


@pytest.mark.parametrize(
    ("text", "unsafe"),
    [
        pytest.param("energy-desk-gas", False, id="a-name"),
        pytest.param("FCA enquiry 2026-14 about gas trades", False, id="a-sentence"),
        pytest.param("3f2a9c1e-7b4d-4e2a-9f1c-2b3d4e5f6a7b", False, id="a-uuid"),
        pytest.param("eu-west-1", False, id="a-region"),
        pytest.param("clientCertificateFile2", False, id="a-camel-case-field-name"),
        pytest.param(RANDOM, True, id="a-random-token"),
        pytest.param(GITHUB, True, id="a-github-token"),
        pytest.param(SLACK_HOOK, True, id="a-slack-webhook"),
        pytest.param("AIza" + "B" * 35, True, id="a-google-key"),
    ],
)
def test_what_may_be_echoed(text: str, unsafe: bool) -> None:
    assert unsafe_to_echo(text) is unsafe


def test_the_scanner_refuses_a_slack_webhook_url_in_a_manifest() -> None:
    assert looks_like_secret(f"alerts go to {SLACK_HOOK}") == "a Slack webhook URL"
