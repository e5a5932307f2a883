"""The invalid-manifest corpus: one broken input per case, and the exact diagnostic it gets.

Each case is a directory under tests/fixtures/invalid/ holding a minimal estate that is valid
except for one planted error (a few cases plant several on purpose, to check that a run
reports them all together). Hostile inputs that must not sit in the repository (a file over
10 MiB, bytes that are not UTF-8) are generated into tmp_path by the test.

For every case the table names the file, line, column, field path, error code and a message
substring the loader must produce. `test_repaired_case_loads` undoes the planted error and
checks the estate then loads cleanly, which keeps every fixture minimal and honest.

Cases whose current output points at the wrong place are marked xfail(strict=True) with the
output they *should* produce, so fixing the loader turns them into failures to un-mark.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from reconciler.diagnostics import Diagnostic
from reconciler.errors import InputError
from reconciler.manifest.loader import load_estate

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "invalid"
TEN_MIB = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Expected:
    """One diagnostic: where (file relative to the case folder, 1-based line and column)."""

    file: str
    line: int
    column: int
    field: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Edit:
    """A text replacement in a case file that undoes (part of) the planted error."""

    file: str
    old: str
    new: str


Generator = Callable[[Path, bool], None]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    expected: tuple[Expected, ...]
    repair: tuple[Edit, ...] = ()
    generate: Generator | None = None
    """Writes generated files into the case folder; the flag says whether to plant the error."""
    secret: str | None = None
    """Text that must not appear in any message, hint or rendered diagnostic."""
    bug: str | None = None
    """Set when the loader is known to get this case wrong: the test is a strict xfail."""


def one(file: str, line: int, column: int, field: str, code: str, message: str) -> tuple[Expected]:
    return (Expected(file, line, column, field, code, message),)


# --- generated inputs ---------------------------------------------------------------------

_QUEUE_HEAD = (
    b"apiVersion: recon/v1\n"
    b"kind: Queue\n"
    b"metadata:\n"
    b"  name: energy-desk-gas\n"
    b"spec:\n"
    b"  regulated: false\n"
    b"  region: eu-west-1\n"
    b"  clientRegion: EU\n"
)


def _huge_file(folder: Path, planted: bool) -> None:
    """A valid manifest padded with a comment line to just over (or under) 10 MiB."""
    head = _QUEUE_HEAD
    size = TEN_MIB + 1 if planted else 64 * 1024
    padding = size - len(head) - len(b"# \n")
    (folder / "huge.yaml").write_bytes(head + b"# " + b"x" * padding + b"\n")


def _latin1_byte(folder: Path, planted: bool) -> None:
    """`Café` saved as Latin-1: byte 0xe9 at line 9, column 20."""
    text = "Café desk".encode("latin-1" if planted else "utf-8")
    (folder / "queues.yaml").write_bytes(_QUEUE_HEAD + b'  description: "' + text + b'"\n')


def _bad_byte_after_multibyte(folder: Path, planted: bool) -> None:
    """`Zürich` in UTF-8 then a stray 0xff: the 24th character of line 9 (its 25th byte)."""
    stray = b"\xff " if planted else b""
    value = "Zürich ".encode() + stray + b"desk"
    (folder / "queues.yaml").write_bytes(_QUEUE_HEAD + b'  description: "' + value + b'"\n')


# --- the corpus ---------------------------------------------------------------------------

_COLLECTORS = "collectors.yaml"

CASES: tuple[Case, ...] = (
    Case(
        "01-yaml-syntax-error",
        one("retention.yaml", 7, 17, "", "yaml.syntax", "mapping values are not allowed"),
        (Edit("retention.yaml", "    archiveAfter: 30d", "  archiveAfter: 30d"),),
    ),
    Case(
        "02-yaml-unclosed-quote",
        one("retention.yaml", 4, 9, "", "yaml.syntax", "quoted scalar"),
        (Edit("retention.yaml", '"mifid2-seven-years\n', '"mifid2-seven-years"\n'),)
    ),
    Case(
        "03-duplicate-key",
        one("retention.yaml", 8, 3, "", "yaml.duplicate-key",
            "the key 'retain' appears twice in the same map (first on line 6)"),
        (Edit("retention.yaml", "  retain: 5y\n", ""),),
    ),
    Case(
        "04-python-object-tag",
        one("retention.yaml", 6, 11, "", "yaml.tag",
            "the tag '!!python/object/apply:os.system' is not allowed"),
        (Edit("retention.yaml", '!!python/object/apply:os.system ["echo pwned"]', "7y"),),
    ),
    Case(
        "05-alias-bomb",
        one("retention.yaml", 11, 8, "", "yaml.too-large", "(an alias bomb?)"),
        (
            Edit("retention.yaml", '    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", '
                 '"lol", "lol"]', "    a: lol"),
            *(Edit("retention.yaml", f"    {k}: &{k}", f"    # {k}: &{k}") for k in "bcdefghi"),
        )
    ),
    Case(
        "06-recursive-alias",
        one("retention.yaml", 5, 16, "", "yaml.recursive-alias",
            "an alias refers to its own ancestor"),
        (Edit("retention.yaml", "    self: *loop\n", "    self: ok\n"),),
    ),
    Case(
        "07-file-too-large",
        one("huge.yaml", 0, 0, "", "file.too-large", "manifests are limited to 10 MiB"),
        generate=_huge_file,
    ),
    Case(
        "08-non-utf8-byte",
        one("queues.yaml", 9, 20, "", "file.encoding", "byte 0xe9 is not valid UTF-8"),
        generate=_latin1_byte,
    ),
    Case(
        "09-non-utf8-after-multibyte-char",
        one("queues.yaml", 9, 24, "", "file.encoding", "byte 0xff is not valid UTF-8"),
        generate=_bad_byte_after_multibyte
    ),
    Case(
        "10-template-sandbox-escape",
        one("queues.yaml.j2", 9, 0, "", "template.unsafe",
            "access to attribute '__class__' of 'str' object is unsafe"),
        (Edit("queues.yaml.j2", "{{ ''.__class__.__mro__ }}", "{{ 'gas desk' }}"),),
    ),
    Case(
        "11-template-undefined-variable",
        one("queues.yaml.j2", 9, 0, "", "template.undefined", "'genesys_region' is undefined"),
        (Edit("queues.yaml.j2", "{{ genesys_region }}", "eu-west-1"),),
    ),
    Case(
        "12-template-syntax-error",
        one("queues.yaml.j2", 11, 0, "", "template.syntax", "unknown tag 'endfo'"),
        (Edit("queues.yaml.j2", "{%- endfo %}", "{%- endfor %}"),),
    ),
    Case(
        "13-template-schema-error-line",
        one("queues.yaml.j2", 21, 17, "spec.clientRegion", "schema.literal_error",
            "'EUROPE' is not allowed here"),
        (Edit("queues.yaml.j2", "clientRegion: EUROPE", "clientRegion: EU"),),
    ),
    Case(
        "14-template-duplicate-key",
        one("queues.yaml.j2", 22, 3, "", "yaml.duplicate-key",
            "the key 'region' appears twice in the same map (first on line 20)"),
        (Edit("queues.yaml.j2", "  region: eu-west-2\n", ""),)
    ),
    Case(
        "15-missing-api-version",
        one("retention.yaml", 1, 1, "apiVersion", "manifest.api-version",
            "required field 'apiVersion' is missing"),
        (Edit("retention.yaml", "kind: RetentionPolicy", "apiVersion: recon/v1\nkind: RetentionPolicy"),),
    ),
    Case(
        "16-wrong-api-version",
        one("retention.yaml", 1, 13, "apiVersion", "manifest.api-version",
            "unsupported apiVersion"),
        (Edit("retention.yaml", "recon/v2", "recon/v1"),)
    ),
    Case(
        "17-unknown-kind",
        one("queues.yaml", 2, 7, "kind", "manifest.kind",
            "unknown kind (did you mean 'Queue'?)"),
        (Edit("queues.yaml", "kind: Qeue", "kind: Queue"),)
    ),
    Case(
        "18-unknown-field",
        one("retention.yaml", 7, 3, "spec.archiveAftr", "schema.extra_forbidden",
            "unknown field 'archiveAftr' (did you mean 'archiveAfter'?)"),
        (Edit("retention.yaml", "archiveAftr", "archiveAfter"),),
    ),
    Case(
        # A misspelt *required* field is two true statements: the typo is unknown and the
        # field it was meant to be is missing. Both are reported, each at its own place.
        "19-misspelt-required-field",
        (
            Expected("retention.yaml", 5, 1, "spec.retain", "schema.missing",
                     "required field 'retain' is missing"),
            Expected("retention.yaml", 6, 3, "spec.retian", "schema.extra_forbidden",
                     "unknown field 'retian' (did you mean 'retain'?)"),
        ),
        (Edit("retention.yaml", "retian", "retain"),),
    ),
    Case(
        "20-missing-required-field",
        one("queues.yaml", 5, 1, "spec.clientRegion", "schema.missing",
            "required field 'clientRegion' is missing"),
        (Edit("queues.yaml", "  region: eu-west-1\n", "  region: eu-west-1\n  clientRegion: EU\n"),),
    ),
    Case(
        "21-bad-literal",
        one("archive.yaml", 9, 11, "spec.objectLock.mode", "schema.literal_error",
            "'COMPLIANT' is not allowed here (did you mean 'COMPLIANCE'?)"),
        (Edit("archive.yaml", "mode: COMPLIANT\n", "mode: COMPLIANCE\n"),),
    ),
    Case(
        "22-bad-duration",
        one("retention.yaml", 6, 11, "spec.retain", "schema.value_error",
            "'7 years' is not a duration"),
        (Edit("retention.yaml", "7 years", "7y"),),
    ),
    Case(
        "23-retention-in-seconds",
        one("archive.yaml", 10, 23, "spec.objectLock.defaultRetention", "schema.value_error",
            "S3 default retention is set in days or years"),
        (Edit("archive.yaml", "defaultRetention: 10s", "defaultRetention: 10y"),),
    ),
    Case(
        "24-archive-after-exceeds-retain",
        one("retention.yaml", 7, 17, "spec.archiveAfter", "schema.value_error",
            "archiveAfter (8y) is longer than retain (7y)"),
        (Edit("retention.yaml", "archiveAfter: 8y", "archiveAfter: 30d"),)
    ),
    Case(
        "25-literal-secret-token",
        one(_COLLECTORS, 13, 14, "spec.collectors[0].token", "schema.value_error",
            "a literal secret is not allowed"),
        (Edit(_COLLECTORS, "Zq8vK2mWp4Rt7Yx1Ln5B", "env:TRADESENSE_TOKEN_A"),),
        secret="Zq8vK2mWp4Rt7Yx1Ln5B",
    ),
    Case(
        "26-aws-key-in-annotation",
        one("retention.yaml", 6, 11, "metadata.annotations.note", "secret.literal",
            "this looks like an AWS access key id"),
        (Edit("retention.yaml", "AKIAIOSFODNN7EXAMPLE", "the CI role"),),
        secret="AKIAIOSFODNN7EXAMPLE",
    ),
    Case(
        "27-secret-pattern-in-secret-field",
        one("market-data.yaml", 9, 12, "spec.credentials.token", "secret.literal",
            "this looks like a GitHub token"),
        (Edit("market-data.yaml", "ghp_Zq8vK2mWp4Rt7Yx1Ln5BaC3dE6fG9hJ0kL2m", "env:FEED_TOKEN"),),
        secret="ghp_Zq8vK2mWp4Rt7Yx1Ln5BaC3dE6fG9hJ0kL2m"
    ),
    Case(
        "28-unknown-aws-region",
        one("archive.yaml", 7, 11, "spec.region", "schema.value_error",
            "'eu-west-9' is not an AWS region (did you mean 'eu-west-3'?)"),
        (Edit("archive.yaml", "eu-west-9", "eu-west-1"),),
    ),
    Case(
        "29-bad-bucket-name",
        one("archive.yaml", 6, 15, "spec.bucketName", "schema.value_error",
            "'Acme_Trading_Recordings' is not a valid S3 bucket name"),
        (Edit("archive.yaml", "Acme_Trading_Recordings", "acme-trading-recordings"),),
    ),
    Case(
        "30-bad-reader-arn",
        one("archive.yaml", 10, 7, "spec.readers[1]", "schema.value_error",
            "'arn:aws:iam::1234:role/auditor' is not an IAM role or user ARN"),
        (Edit("archive.yaml", "iam::1234:", "iam::123456789012:"),),
    ),
    Case(
        "31-dangling-reference",
        one("queues.yaml", 7, 20, "spec.recordingPolicy", "reference.dangling",
            "RecordingPolicy 'mifid2-mandatory-vocie' does not exist "
            "(did you mean 'mifid2-mandatory-voice'?)"),
        (Edit("queues.yaml", "mifid2-mandatory-vocie", "mifid2-mandatory-voice"),),
    ),
    Case(
        "32-dangling-depends-on",
        one("retention.yaml", 13, 7, "metadata.dependsOn[0]", "reference.dangling",
            "RetentionPolicy 'mifid2-seven-year' does not exist "
            "(did you mean 'mifid2-seven-years'?)"),
        (Edit("retention.yaml", "mifid2-seven-year\n", "mifid2-seven-years\n"),),
    ),
    Case(
        "33-duplicate-resource",
        one("b-retention.yaml", 11, 9, "metadata.name", "resource.duplicate",
            "RetentionPolicy/mifid2-seven-years is declared twice "
            "(first at 33-duplicate-resource/a-retention.yaml:4:9)"),
        (Edit("b-retention.yaml", "name: mifid2-seven-years", "name: mifid2-five-years"),),
    ),
    Case(
        # A cycle has no single culprit line: it is reported once, at the name of the first
        # resource on it (in sorted order), and the message names every member.
        "34-depends-on-cycle",
        one("retention.yaml", 4, 9, "", "reference.cycle",
            "dependency cycle: RetentionPolicy/mifid2-seven-years -> "
            "RetentionPolicy/service-six-months -> RetentionPolicy/mifid2-seven-years"),
        (Edit("retention.yaml", "  dependsOn: [RetentionPolicy/mifid2-seven-years]\n", ""),),
    ),
    Case(
        "35-access-logging-cycle",
        one("archive.yaml", 4, 9, "", "reference.cycle",
            "dependency cycle: ArchiveBucket/trading-archive-eu -> "
            "ArchiveBucket/trading-logs-eu -> ArchiveBucket/trading-archive-eu"),
        (Edit("archive.yaml", "  accessLogging:\n    targetBucket: acme-trading-recordings-eu\n", ""),),
    ),
    Case(
        "36-waiver-bad-target",
        one("waiver.yaml", 7, 11, "spec.target", "schema.value_error",
            "'queue:energy-desk-gas' is not a resource address; write Kind/name"),
        (Edit("waiver.yaml", "queue:energy-desk-gas", "Queue/energy-desk-gas"),),
    ),
    Case(
        "37-legal-hold-from-after-to",
        one("holds.yaml", 9, 11, "spec.scope.from", "schema.value_error",
            "from (2026-09-30) is after to (2026-07-01)"),
        (Edit("holds.yaml", "from: 2026-09-30", "from: 2026-06-30"),)
    ),
    Case(
        "38-legal-hold-empty-scope",
        one("holds.yaml", 7, 10, "spec.scope", "schema.value_error",
            "the scope is empty, which would hold nothing"),
        (Edit("holds.yaml", "scope: {}", "scope: {users: [ahmed.khan@acme.example]}"),),
    ),
    Case(
        "39-invalid-date",
        one("waiver.yaml", 10, 12, "", "yaml.value",
            "cannot read the value '2026-13-30': month must be in 1..12"),
        (Edit("waiver.yaml", "2026-13-30", "2026-12-30"),),
    ),
    Case(
        "40-project-boolean-client-id",
        one("recon.yaml", 6, 17, "targets.prod-eu.genesys.clientId", "schema.string_type",
            "expected text, got a boolean"),
        (Edit("recon.yaml", "clientId: true", "clientId: env:GENESYS_CLIENT_ID"),),
    ),
    Case(
        "41-project-undefined-target",
        one("recon.yaml", 2, 9, "target", "schema.value_error",
            "target 'prod-us' is not defined under targets (did you mean 'prod-eu'?)"),
        (Edit("recon.yaml", "target: prod-us", "target: prod-eu"),)
    ),
    Case(
        "42-project-literal-client-secret",
        one("recon.yaml", 7, 21, "targets.prod-eu.genesys.clientSecret", "schema.value_error",
            "a literal secret is not allowed"),
        (Edit("recon.yaml", "9f8e7d6c5b4a39281706f5e4d3c2b1a0", "env:GENESYS_CLIENT_SECRET"),),
        secret="9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    ),
    Case(
        "43-project-aws-key-in-profile",
        one("recon.yaml", 6, 16, "targets.prod-eu.aws.profile", "secret.literal",
            "this looks like an AWS access key id"),
        (Edit("recon.yaml", "AKIAIOSFODNN7EXAMPLE", "trading-recordings"),),
        secret="AKIAIOSFODNN7EXAMPLE"
    ),
    Case(
        "44-document-is-a-list",
        one("retention.yaml", 1, 1, "", "manifest.shape", "a manifest document must be a map"),
        (
            Edit(
                "retention.yaml",
                "- apiVersion: recon/v1\n  kind: RetentionPolicy\n  metadata:\n"
                "    name: mifid2-seven-years\n  spec:\n    retain: 7y\n",
                "apiVersion: recon/v1\nkind: RetentionPolicy\nmetadata:\n"
                "  name: mifid2-seven-years\nspec:\n  retain: 7y\n",
            ),
        ),
    ),
    Case(
        "45-percent-over-100",
        one(_COLLECTORS, 21, 11, "spec.target", "schema.less_than_equal",
            "must be at most 100"),
        (Edit(_COLLECTORS, "target: 120%", "target: 99.9%"),),
    ),
    Case(
        "46-duplicate-collector-names",
        one(_COLLECTORS, 17, 13, "spec.collectors[1].name", "schema.value_error",
            "two collectors are named 'ldn-collector-a'"),
        (
            Edit(
                _COLLECTORS,
                "name: ldn-collector-a\n      endpoints:\n        primary: wss://tradesense-b1",
                "name: ldn-collector-b\n      endpoints:\n        primary: wss://tradesense-b1",
            ),
        )
    ),
    Case(
        "47-ha-secondary-equals-primary",
        one(_COLLECTORS, 13, 20, "spec.collectors[0].endpoints.secondary", "schema.value_error",
            "secondary is the same endpoint as primary"),
        (Edit(_COLLECTORS, "secondary: wss://tradesense-a1", "secondary: wss://tradesense-a2"),)
    ),
    Case(
        "48-instrument-missing-as",
        one("market-data.yaml", 13, 7, "spec.instruments[1].as", "schema.missing",
            "required field 'as' is missing"),
        (Edit("market-data.yaml", "field: exchange_rate}", "field: exchange_rate, as: currency_pair}"),),
    ),
    Case(
        # Four errors in two files and three resources: all reported in one run, sorted by
        # file, line and column. The Queue's reference to the invalid RecordingPolicy is not
        # reported as dangling: the policy is declared, it is only invalid.
        "49-errors-across-two-files",
        (
            Expected("queues.yaml", 9, 17, "spec.clientRegion", "schema.literal_error",
                     "'EUR' is not allowed here (did you mean 'EU'?)"),
            Expected("recording.yaml", 6, 21, "spec.regimes[1]", "schema.literal_error",
                     "'esma' is not allowed here"),
            Expected("recording.yaml", 10, 15, "spec.record.internal", "schema.literal_error",
                     "'sometimes' is not allowed here"),
            Expected("recording.yaml", 19, 17, "spec.archiveAfter", "schema.value_error",
                     "'30 days' is not a duration"),
        ),
        (
            Edit("queues.yaml", "clientRegion: EUR\n", "clientRegion: EU\n"),
            Edit("recording.yaml", "[mifid2, esma]", "[mifid2]"),
            Edit("recording.yaml", "internal: sometimes", "internal: never"),
            Edit("recording.yaml", "archiveAfter: 30 days", "archiveAfter: 30d"),
        ),
    ),
    Case(
        "50-instrument-as-reserved-key",
        one("market-data.yaml", 13, 50, "spec.instruments[1].as", "schema.value_error",
            "'instruments' is a key market_snapshot always has"),
        (Edit("market-data.yaml", "as: instruments}", "as: currency_pair}"),),
    ),
    Case(
        # An exemption for a trader no collector has would silently exempt nothing (a typo in
        # the id); it is refused, naming where the ids come from.
        "51-exemption-unknown-trader",
        one("collectors.yaml", 23, 15, "spec.exemptions[0].trader", "schema.value_error",
            "no collector has a trader 'T-1009'"),
        (Edit("collectors.yaml", "trader: T-1009", "trader: T-1001"),),
    ),
    # Issue 17, class 6: values that would overflow, or exceed what the platform allows.
    Case(
        "70-retention-over-object-lock-maximum",
        one("archive.yaml", 10, 23, "spec.objectLock.defaultRetention", "schema.value_error",
            "36501d is longer than S3 Object Lock allows (at most 36500d or 100y)"),
        (Edit("archive.yaml", "defaultRetention: 36501d", "defaultRetention: 36500d"),),
    ),
    # Issue 17, class 7: a name that only looks like another (a second, unregulated queue).
    Case(
        "71-name-with-trailing-newline",
        one("queues.yaml", 4, 9, "metadata.name", "schema.value_error",
            "'energy-desk-gas\\n' is not a valid name: contains a line break"),
        (Edit("queues.yaml", '"energy-desk-gas\\n"', "energy-desk-gas"),),
    ),
    Case(
        "72-hold-date-out-of-bounds",
        one("holds.yaml", 10, 9, "spec.scope.to", "schema.value_error",
            "9999-12-31 is outside the dates recon accepts (from 1970-01-01 to 2199-12-31)"),
        (Edit("holds.yaml", "to: 9999-12-31", "to: 2026-09-30"),),
    ),
    Case(
        "73-exemption-without-zone",
        one("collectors.yaml", 31, 13, "spec.exemptions[0].from", "schema.value_error",
            "2026-11-21T18:00:00 has no time zone"),
        (Edit("collectors.yaml", "from: 2026-11-21T18:00:00\n", "from: 2026-11-21T18:00:00Z\n"),),
    ),
    Case(
        "74-poll-interval-below-minimum",
        one("collectors.yaml", 14, 21, "spec.collectors[0].pollInterval", "schema.value_error",
            "1ms is shorter than 1s; write a duration from 1s to 1h"),
        (Edit("collectors.yaml", "pollInterval: 1ms", "pollInterval: 10s"),),
    ),
)  # fmt: skip


def _params(cases: Sequence[Case]) -> list[Any]:
    params = []
    for case in cases:
        marks = []
        if case.bug is not None:
            marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=case.bug))
        params.append(pytest.param(case, id=case.name, marks=marks))
    return params


def _prepare(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, planted: bool) -> None:
    folder = tmp_path / case.name
    shutil.copytree(FIXTURES / case.name, folder)
    if case.generate is not None:
        case.generate(folder, planted)
    monkeypatch.chdir(tmp_path)


def _diagnostics(case: Case) -> list[Diagnostic]:
    """What loading the case folder reports ([] when it loads cleanly)."""
    try:
        load_estate([case.name])
    except InputError as error:
        return list(error.diagnostics)
    return []


def _where(diagnostic: Diagnostic) -> tuple[str, int, int, str, str]:
    where = diagnostic.location
    return (where.file, where.line, where.column, diagnostic.field, diagnostic.code)


@pytest.mark.parametrize("case", _params(CASES))
def test_invalid_case_is_reported_exactly(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _prepare(case, tmp_path, monkeypatch, planted=True)
    diagnostics = _diagnostics(case)
    shown = "\n".join(d.render() for d in diagnostics) or "(no diagnostics)"
    if case.secret is not None:  # checked first: it must hold even where a location is known wrong
        for diagnostic in diagnostics:
            for text in (diagnostic.message, diagnostic.hint, diagnostic.render()):
                assert case.secret not in text, "a diagnostic repeats the secret"

    expected = [(f"{case.name}/{e.file}", e.line, e.column, e.field, e.code) for e in case.expected]
    assert [_where(d) for d in diagnostics] == expected, shown
    for diagnostic, want in zip(diagnostics, case.expected, strict=True):
        assert want.message in diagnostic.message, shown


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CASES])
def test_repaired_case_loads(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Undo the planted error: the rest of the case must be a valid estate."""
    assert case.repair or case.generate, "every case says how to repair it"
    _prepare(case, tmp_path, monkeypatch, planted=False)
    for edit in case.repair:
        path = tmp_path / case.name / edit.file
        text = path.read_text(encoding="utf-8")
        assert edit.old in text, f"{edit.file}: the repair's text is not in the fixture"
        path.write_text(text.replace(edit.old, edit.new), encoding="utf-8")
    diagnostics = _diagnostics(case)
    assert diagnostics == [], "\n".join(d.render() for d in diagnostics)


def test_every_fixture_folder_has_a_case() -> None:
    folders = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir())
    assert folders == [case.name for case in CASES]
    assert len(CASES) >= 36
