"""Issue 17, class 7 (first half): names are what they look like.

`metadata.name: "energy-desk-gas\\n"` passed (a regex ending in `$` matches before a
trailing newline) and made a second, unregulated look-alike queue. Every name, id, key and
reference is now matched whole; identifiers are ASCII (no Cyrillic `а` for `a`); e-mail
addresses are lower case (Genesys matches users without case, so `Jane@` and `jane@` are
one person); one-line text has no control, invisible or bidirectional-control character
and no outer whitespace; prose (reasons, descriptions) may break lines but has no control
or bidi character. Each case changes one value of an example estate and expects one
diagnostic at that value's line, naming the field and what is wrong.

The JSON Schema patterns editors get are checked against the Python checks with pydantic's
own `pattern=` (pydantic-core compiles it with Rust's regex crate, where `$` is the end of
the text, as in ECMA-262 JSON Schema; Python's `re` lets `$` match before a final newline).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field, ValidationError

from reconciler.diagnostics import Diagnostic
from reconciler.errors import InputError
from reconciler.manifest.kinds import text
from reconciler.manifest.loader import load_estate
from tests.conftest import EXAMPLES, Recon

EU = "energy-desk-eu"
US = "fx-desk-us"

LOOKALIKE_QUEUE = """apiVersion: recon/v1
kind: Queue
metadata:
  name: {name}
spec:
  regulated: false
  region: eu-west-1
  clientRegion: EU
"""


def diagnostics_after(tmp_path: Path, desk: str, file: str, old: str, new: str) -> list[Diagnostic]:
    folder = tmp_path / desk
    shutil.copytree(EXAMPLES / desk, folder)
    path = folder / file
    if old:
        original = path.read_text(encoding="utf-8")
        assert old in original, f"{file} has no {old!r}"
        path.write_text(original.replace(old, new, 1), encoding="utf-8")
    else:
        path.write_text(new, encoding="utf-8")
    try:
        load_estate([folder])
    except InputError as error:
        return list(error.diagnostics)
    return []


CASES = [
    # (desk, file, old, new, field, message)
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name='"energy-desk-gas\\n"'), "metadata.name",
     "'energy-desk-gas\\n' is not a valid name: contains a line break"),
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name='"energy-desk-gas "'), "metadata.name",
     "starts or ends with whitespace"),
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name='"energy-desk-g\\u0430s"'), "metadata.name",
     "U+0430 (cyrillic small letter a), which is not ASCII"),
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name='"energy\\u200b-desk-gas"'), "metadata.name",
     "the invisible character U+200B"),
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name='"energy-desk-gas\\u202e"'), "metadata.name",
     "bidirectional-text control U+202E"),
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name="Energy-Desk-Gas"), "metadata.name",
     "'Energy-Desk-Gas' is not a valid name; use 1-63 lowercase letters"),
    (EU, "lookalike.yaml", "", LOOKALIKE_QUEUE.format(name='"energy-desk-gas\\r"'), "metadata.name",
     "contains a line break"),
    (EU, "queues.yaml.j2", "recordingPolicy: customer-service-voice", 'recordingPolicy: "customer-service-voice\\n"',
     "spec.recordingPolicy", "contains a line break"),
    (EU, "retention.yaml", "  name: service-six-months",
     "  name: service-six-months\n  dependsOn: [\"RetentionPolicy/mifid2-seven-years\\n\"]", "metadata.dependsOn[0]",
     "is not a resource address: contains a line break"),
    (EU, "retention.yaml", "  name: service-six-months",
     "  name: service-six-months\n  renamedFrom: [\"service-6-months\\t\"]", "metadata.renamedFrom[0]",
     "contains the control character U+0009"),
    (EU, "archive.yaml", "labels: {desk: energy}", 'labels: {"desk\\u202e": energy}', "metadata.labels.desk\\u202e.[key]",
     "bidirectional-text control U+202E"),
    (EU, "archive.yaml", "labels: {desk: energy}", 'labels: {desk: "energy\\n"}', "metadata.labels.desk",
     "contains a line break"),
    (EU, "archive.yaml", "labels: {desk: energy}", 'labels: {desk: energy}\n  annotations: {note: "ok\\u2066hidden"}',
     "metadata.annotations.note", "bidirectional-text control U+2066"),
    (EU, "archive.yaml", "bucketName: acme-trading-recordings-eu", 'bucketName: "acme-trading-recordings-eu\\n"',
     "spec.bucketName", "is not a valid S3 bucket name: contains a line break"),
    (EU, "archive.yaml", "kmsKeyAlias: alias/trading-recordings", 'kmsKeyAlias: "alias/trading-recordings\\n"',
     "spec.encryption.kmsKeyAlias", "contains a line break"),
    (EU, "archive.yaml", "- arn:aws:iam::123456789012:role/compliance-reviewer",
     '- "arn:aws:iam::123456789012:role/compliance-reviewer\\n"', "spec.readers[0]", "contains a line break"),
    (EU, "archive.yaml", "prefix: access/", 'prefix: "access/\\u0000"', "spec.accessLogging.prefix",
     "control character U+0000"),
    (EU, "recording.yaml", "encryptionKey: alias/trading-recordings", 'encryptionKey: "alias/trading-recordings "',
     "spec.encryptionKey", "starts or ends with whitespace"),
    (EU, "recording.yaml", "metadataKeys: [market_snapshot, consent]", 'metadataKeys: [market_snapshot, "consent\\n"]',
     "spec.metadataKeys[1]", "contains a line break"),
    (EU, "holds.yaml", "users: [ahmed.khan@acme.example", "users: [Ahmed.Khan@acme.example", "spec.scope.users[0]",
     "write it in lower case (ahmed.khan@acme.example)"),
    (EU, "holds.yaml", "users: [ahmed.khan@acme.example", "users: [ahmed.kh\u0430n@acme.example", "spec.scope.users[0]",
     "not ASCII"),
    (EU, "holds.yaml", "queues: [energy-desk-gas]", 'queues: ["energy-desk-gas\\n"]', "spec.scope.queues[0]",
     "contains a line break"),
    (EU, "holds.yaml", 'matter: "FCA enquiry 2026/017"', 'matter: "FCA enquiry 2026/017\\u202e"', "spec.matter",
     "bidirectional-text control"),
    (EU, "holds.yaml", '"guaranteed return"', '"guaranteed\\u200breturn"', "spec.scope.searchTerms[0]",
     "invisible character U+200B"),
    (EU, "collectors.yaml", "{id: T-1001,", '{id: "T-1001\\n",', "spec.collectors[0].traders[0].id",
     "contains a line break"),
    (EU, "collectors.yaml", "turret: TUR-1002}", 'turret: "TUR-1002\\u200d"}', "spec.collectors[0].traders[1].turret",
     "invisible character U+200D"),
    (EU, "collectors.yaml", "user: lena.berg@acme.example", "user: Lena.Berg@acme.example",
     "spec.collectors[0].traders[1].user", "write it in lower case"),
    (EU, "collectors.yaml", "line: L8", 'line: " L8"', "spec.exemptions[0].line", "starts or ends with whitespace"),
    (EU, "collectors.yaml", "switch: ldn-iptrade-01", 'switch: "ldn-iptrade-01\\n"', "spec.dataSource.switch",
     "contains a line break"),
    (EU, "market-data.yaml", "as: commodity}", 'as: "commodity\\n"}', "spec.instruments[0].as", "contains a line break"),
    (EU, "market-data.yaml", "as: commodity}", 'as: "comm\\u200bodity"}', "spec.instruments[0].as",
     "invisible character U+200B"),
    (EU, "market-data.yaml", "symbol: EURUSD,", 'symbol: "EURUSD\\u200b",', "spec.instruments[1].symbol",
     "invisible character U+200B"),
    (US, "waivers.yaml", "target: Queue/fx-options", 'target: "Queue/fx-options\\n"', "spec.target",
     "is not a resource address: contains a line break"),
    (US, "waivers.yaml", "rule: recon.trader-uncovered", 'rule: "recon.trader-uncovered\\n"', "spec.rule",
     "is not a rule id: contains a line break"),
    (US, "waivers.yaml", "owner: nadia.fischer@acme.example", 'owner: "nadia.fischer@acme.example\\u202e"',
     "spec.owner", "bidirectional-text control"),
    (EU, "recon.yaml", "\ntarget: sandbox", '\ntarget: "prod-eu\\n"', "target", "contains a line break"),
    (EU, "recon.yaml", "  prod-eu:", '  "prod-eu ":', "targets.prod-eu .[key]", "starts or ends with whitespace"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("desk", "file", "old", "new", "field", "message"),
    CASES,
    ids=[f"{c[4]}:{c[5][:30]}" for c in CASES],
)
def test_a_lookalike_is_refused_at_its_line(
    tmp_path: Path, desk: str, file: str, old: str, new: str, field: str, message: str
) -> None:
    found = diagnostics_after(tmp_path, desk, file, old, new)
    shown = "\n".join(d.render() for d in found)
    assert [d.field for d in found] == [field], shown
    (diagnostic,) = found
    assert message in diagnostic.message, shown
    assert diagnostic.location.file.endswith(file) and diagnostic.location.line > 0, shown


@pytest.mark.parametrize(
    ("desk", "file", "old", "new"),
    [
        pytest.param(EU, "market-data.yaml", "symbol: EURUSD,", 'symbol: "CL1 Comdty",', id="bloomberg-symbol-space"),
        pytest.param(EU, "holds.yaml", 'matter: "FCA enquiry 2026/017"', 'matter: "BaFin Prüfung 2026/017"',
                     id="one-line-text-any-script"),
        pytest.param(EU, "archive.yaml", "labels: {desk: energy}", 'labels: {desk: "Zürich energy"}', id="label-value"),
        pytest.param(EU, "archive.yaml", "labels: {desk: energy}",
                     'labels: {desk: energy}\n  annotations: {note: "line one\\nline two\\tand a tab"}',
                     id="annotation-prose-lines"),
        pytest.param(US, "waivers.yaml", "owner: nadia.fischer@acme.example", 'owner: "Nadia Fischer (Voice Ops)"',
                     id="owner-as-words"),
    ],
)  # fmt: skip
def test_ordinary_text_is_accepted(tmp_path: Path, desk: str, file: str, old: str, new: str) -> None:
    found = diagnostics_after(tmp_path, desk, file, old, new)
    assert found == [], "\n".join(d.render() for d in found)


def test_validate_refuses_the_lookalike_queue(recon: Recon, tmp_path: Path) -> None:
    desk = tmp_path / "desk"
    shutil.copytree(EXAMPLES / EU, desk)
    (desk / "lookalike.yaml").write_text(LOOKALIKE_QUEUE.format(name='"energy-desk-gas\\n"'), encoding="utf-8")
    result = recon("validate", str(desk))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "lookalike.yaml:4:9: error: metadata.name: 'energy-desk-gas\\n' is not a valid name" in result.stdout


# --- the published patterns mean what the checks mean -------------------------------------

CHECKS: list[tuple[str, str, Callable[[str], str]]] = [
    ("name", text.NAME_PATTERN, text.check_name),
    ("address", text.ADDRESS_PATTERN, text.check_address),
    ("identifier", text.IDENTIFIER_PATTERN, text.check_identifier),
    ("key", text.KEY_PATTERN, text.check_key),
    ("label-key", text.LABEL_KEY_PATTERN, text.check_label_key),
    ("email", text.EMAIL_PATTERN, text.check_email),
]


def _schema_accepts(pattern: str, value: str) -> bool:
    class Probe(BaseModel):
        value: str = Field(pattern=pattern)

    try:
        Probe(value=value)
    except ValidationError:
        return False
    return True


def _check_accepts(check: Callable[[str], str], value: str) -> bool:
    try:
        check(value)
    except ValueError:
        return False
    return True


def test_pydantic_pattern_dollar_is_the_end_of_the_text() -> None:
    """pydantic-core's `pattern` is Rust regex: `^[a-z]+$` does not match "abc\\n"."""
    assert _schema_accepts(r"^[a-z]+$", "abc")
    assert not _schema_accepts(r"^[a-z]+$", "abc\n")


tricky = st.sampled_from(["", "\n", " ", "\u200b", "\u202e", "\u0430", "A", "-", ".", "/", "@", "_", "\t"])
candidates = st.builds(lambda a, b, c: a + b + c, tricky, st.from_regex(r"[a-z0-9./@_-]{0,12}", fullmatch=True), tricky)


@pytest.mark.parametrize(("what", "pattern", "check"), CHECKS, ids=[c[0] for c in CHECKS])
@given(value=candidates | st.text(max_size=12))
def test_the_schema_pattern_and_the_check_agree(
    what: str, pattern: str, check: Callable[[str], str], value: str
) -> None:
    accepted = _check_accepts(check, value)
    if what == "email" and value != value.lower():
        assert not accepted  # the check is stricter: it names the capital letters
        return
    assert accepted == _schema_accepts(pattern, value)
