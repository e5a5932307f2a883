"""Issue 17, class 5: the loader cannot be made to hang or exhaust memory.

Every hostile input here used to hang `recon validate`, blow up its memory or end in a
traceback. Each must now be a diagnostic naming the file (and the template line where
there is one), exit 1, through `recon validate`, `recon render` and `recon plan`.

The first line of defence (the sandbox's intercepted operators and bounded filters, the
YAML reader's limits, safefile) answers most of them with a precise message; the cases at
the end reach the second line (the renderer child's memory, CPU and time limits) on
purpose, by switching the first line off or asking for what only the limits can stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.manifest import render_worker, templating

QUEUE = "apiVersion: recon/v1\nkind: Queue\nmetadata:\n  name: {expr}\n"


def run(folder: Path, *args: str) -> Result:
    with contextlib.chdir(folder):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def assert_refused(result: Result, where: str, code_text: str = "") -> None:
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 1, output
    assert "Traceback" not in output
    assert where in output, output
    if code_text:
        assert code_text in output, output


# (id, template body, what the message says). All on template line 4.
TEMPLATES = [
    ("power-tower-folded-at-compile-time", "{{ 9**(9**9) }}", "more than 4,096 bits"),
    ("two-billion-character-string", "{{ ('x'*2000000000)|length }}", "would make 2,000,000,000 characters"),
    ("list-repeated-a-billion-times", "{{ ([1] * 1000000000)|length }}", "would make 1,000,000,000"),
    ("huge-product", "{{ (2**4000) * (2**4000) }}", "more than 4,096 bits"),
    ("string-doubled-by-plus", "{{ ('x' * 9000000 + 'x' * 9000000)|length }}", "joining two texts"),
    ("recursive-macro", "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "recurses too deeply"),
    ("recursive-loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "recurses too deeply"),
    ("center-two-billion", "{{ 'x'|center(2000000000) }}", "center() would make"),
    ("indent-by-a-billion", "{{ 'a\\nb'|indent(1000000000) }}", "indent() would make"),
    ("replace-empty-with-megabytes", "{{ ('x' * 1000000)|replace('', 'y' * 1000000) }}", "replace() would make"),
    ("join-with-a-huge-separator", "{{ range(10000)|join('x' * 1000000) }}", "join() would make"),
    ("format-filter-width", "{{ '%0999999999d'|format(1) }}", "wider than 10,000"),
    ("percent-operator-width", "{{ '%0999999999d' % 1 }}", "wider than 10,000"),
    ("percent-operator-star-width", "{{ '%*d' % (999999999, 1) }}", "wider than 10,000"),
    ("str-format-width", "{{ '{:>999999999}'.format(1) }}", "wider than 10,000"),
    ("str-ljust", "{{ 'x'.ljust(2000000000) }}", "ljust() would make"),
    ("str-zfill", "{{ 'x'.zfill(2000000000) }}", "zfill() would make"),
    ("str-expandtabs", "{{ ('\\t' * 10000).expandtabs(100000)|length }}", "expandtabs() would"),
    ("slice-into-a-billion-parts", "{{ [1]|slice(1000000000)|list }}", "slice() into more than"),
    ("range-of-a-million", "{% for i in range(1000000) %}{% endfor %}x", "range() of 1,000,000 items"),
    ("include", "{% include 'other.yaml' %}", "{% include %}: a template cannot use other files"),
    ("import", "{% import 'macros.j2' as m %}", "{% import %}: a template cannot use other files"),
    ("from-import", "{% from 'macros.j2' import q %}", "{% from %}: a template cannot use other files"),
    ("extends", "{% extends 'base.j2' %}", "{% extends %}: a template cannot use other files"),
    ("lipsum-is-gone", "{{ lipsum(100000) }}", "'lipsum' is undefined"),
    ("random-is-gone", "{{ [1, 2]|random }}", "No filter named 'random'"),
    ("class-walk", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "sandbox forbids"),
    ("cycler-internals", "{{ cycler.__init__.__globals__ }}", "sandbox forbids"),
    ("namespace-internals", "{{ namespace().__dict__ }}", "has no attribute '__dict__'"),
    ("joiner-internals", "{{ joiner()._sep }}", "has no attribute '_sep'"),
    ("mutating-a-list", "{% set l = [1] %}{{ l.append(2) }}", "sandbox forbids"),
    ("huge-int-literal", "{{ " + "9" * 5000 + " }}", "a number of more than 4,300 digits"),
    ("dict-printed-as-python", "{{ dict(a=1) }}", "is a map, whose Python text is not YAML"),
    (
        "output-bomb",
        "{% for i in range(10000) %}{% for j in range(10000) %}0123456789{% endfor %}{% endfor %}",
        "exceeds 10 MiB",
    ),
]


@pytest.mark.parametrize(("body", "message"), [t[1:] for t in TEMPLATES], ids=[t[0] for t in TEMPLATES])
@pytest.mark.parametrize("command", ["validate", "render", "plan"])
def test_hostile_template_is_a_diagnostic_with_its_line(tmp_path: Path, command: str, body: str, message: str) -> None:
    (tmp_path / "q.yaml.j2").write_text(QUEUE.format(expr=body))
    assert_refused(run(tmp_path, command), "q.yaml.j2:4", message)


# Refused while jinja2 parses or after rendering: the file is named, the line may not be known.
WHOLE_TEMPLATES = [
    ("parentheses-nested-5000-deep", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "nests or recurses too deeply"),
    ("attribute-chain-50000-long", "{{ x" + ".a" * 50_000 + " }}", "nests or recurses too deeply"),
    ("unary-minus-50000-times", "{{ " + "-" * 50_000 + "1 }}", "nests or recurses too deeply"),
    (
        "two-million-empty-lines",
        "{% for i in range(10000) %}{% for j in range(200) %}\n{% endfor %}{% endfor %}",
        "more than 1,000,000 lines",
    ),
    (
        "twenty-thousand-documents",
        "{% for i in range(2) %}{% for j in range(10000) %}\n--- x{% endfor %}{% endfor %}",
        "more than 10,000 documents",
    ),
]


@pytest.mark.parametrize(("body", "message"), [t[1:] for t in WHOLE_TEMPLATES], ids=[t[0] for t in WHOLE_TEMPLATES])
def test_hostile_template_is_a_diagnostic_naming_the_file(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "q.yaml.j2").write_text(body)
    assert_refused(run(tmp_path, "validate"), "q.yaml.j2", message)


FILES = [
    ("symlink-to-dev-zero", lambda d: (d / "zero.yaml").symlink_to("/dev/zero"), "zero.yaml", "character device"),
    ("symlink-to-dev-urandom", lambda d: (d / "r.yaml").symlink_to("/dev/urandom"), "r.yaml", "character device"),
    ("named-pipe", lambda d: os.mkfifo(d / "pipe.yaml"), "pipe.yaml", "named pipe"),
    ("template-that-is-a-pipe", lambda d: os.mkfifo(d / "q.yaml.j2"), "q.yaml.j2", "named pipe"),
    ("symlink-loop", lambda d: (d / "loop.yaml").symlink_to(d / "loop.yaml"), "loop.yaml", "cannot be read"),
    ("recon-yaml-to-dev-zero", lambda d: (d / "recon.yaml").symlink_to("/dev/zero"), "recon.yaml", "character device"),
    ("recon-yaml-is-a-pipe", lambda d: os.mkfifo(d / "recon.yaml"), "recon.yaml", "named pipe"),
    ("eleven-mib-file", lambda d: (d / "big.yaml").write_text("#" * (11 << 20)), "big.yaml", "limited to 10 MiB"),
]


@pytest.mark.parametrize(("make", "name", "message"), [f[1:] for f in FILES], ids=[f[0] for f in FILES])
@pytest.mark.parametrize("command", ["validate", "plan"])
def test_files_that_are_not_regular_are_refused_without_reading(
    tmp_path: Path, command: str, make: object, name: str, message: str
) -> None:
    (tmp_path / "ok.yaml").write_text("apiVersion: recon/v1\nkind: Queue\nmetadata: {name: q}\n")
    make(tmp_path)  # type: ignore[operator]
    assert_refused(run(tmp_path, command), name, message)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d: Path("/dev/zero"), id="dev-zero"),
        pytest.param(lambda d: Path("/dev/urandom"), id="dev-urandom"),
        pytest.param(lambda d: (os.mkfifo(d / "vars.yaml"), d / "vars.yaml")[1], id="named-pipe"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "render", "plan"])
def test_var_file_that_is_not_a_regular_file(tmp_path: Path, command: str, make: object) -> None:
    var_file = make(tmp_path)  # type: ignore[operator]
    result = run(tmp_path, command, "--var-file", str(var_file))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "only regular files are read" in result.output


YAML = [
    ("400-digit-retain", "spec:\n  retain: " + "9" * 400 + "\n", "outside the 64-bit range"),
    ("float-overflow", "spec:\n  retain: 1e400\n", "not finite"),
    ("flow-list-bomb", "spec:\n  members: [" + "a," * 3_000_000 + "]\n", "more than 200,000 values"),
    ("document-bomb", "--- a\n" * 20_000, "more than 10,000 documents"),
    (
        "alias-bomb",
        "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
        + "".join(f"{k}: &{k} [{', '.join([f'*{p}'] * 10)}]\n" for p, k in zip("abcdef", "bcdefg", strict=True)),
        "an alias bomb",
    ),
    ("jwt-scan-quadratic", "metadata:\n  annotations:\n    x: " + "eyJ-" * 40_000 + "\n", ""),
]


@pytest.mark.parametrize(("text", "message"), [y[1:] for y in YAML], ids=[y[0] for y in YAML])
def test_hostile_yaml_through_validate(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "r.yaml").write_text(text)
    assert_refused(run(tmp_path, "validate"), "r.yaml", message)


# ---------------------------------------------------------------------------------------
# The second line: what only the renderer child's limits can stop.
# ---------------------------------------------------------------------------------------


def test_memory_that_grows_by_concatenation_hits_the_childs_memory_limit(tmp_path: Path) -> None:
    """`~` cannot be intercepted; doubling a string 40 times asks for a terabyte."""
    body = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    (tmp_path / "q.yaml.j2").write_text(QUEUE.format(expr=body + "{{ ns.s|length }}"))
    assert_refused(run(tmp_path, "validate"), "q.yaml.j2:4", "more memory than a template may use")


def test_a_template_that_spins_is_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_worker, "TEMPLATE_SECONDS", 0.3)
    spin = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    (tmp_path / "q.yaml.j2").write_text(QUEUE.format(expr=spin))
    assert_refused(run(tmp_path, "validate"), "q.yaml.j2", "rendering took longer than 0 s")


def test_a_child_that_ignores_its_alarm_is_killed_by_the_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As if a computation in C never let the interpreter run the alarm handler."""
    monkeypatch.setattr(render_worker, "TEMPLATE_SECONDS", 0.2)
    monkeypatch.setattr(render_worker, "GRACE_SECONDS", 0.2)
    monkeypatch.setattr(templating, "_time_limit", lambda seconds: contextlib.nullcontext())
    spin = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    (tmp_path / "a.yaml.j2").write_text(QUEUE.format(expr=spin))
    (tmp_path / "b.yaml.j2").write_text(QUEUE.format(expr="{{ undefined_here }}"))
    result = run(tmp_path, "validate")
    assert_refused(result, "a.yaml.j2", "rendering took longer than")
    assert "b.yaml.j2:4" in result.output and "'undefined_here' is undefined" in result.output


def test_a_crashing_renderer_costs_one_template_not_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = render_worker.render

    def crash_on_marker(text: str, variables: dict[str, object], seconds: float) -> str:
        if "CRASH" in text:
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(text, variables, seconds)

    monkeypatch.setattr(render_worker, "render", crash_on_marker)
    (tmp_path / "a.yaml.j2").write_text(QUEUE.format(expr="CRASH"))
    (tmp_path / "b.yaml.j2").write_text(QUEUE.format(expr="{{ undefined_here }}"))
    result = run(tmp_path, "validate")
    assert_refused(result, "a.yaml.j2", "was stopped by signal SIGSEGV")
    assert "b.yaml.j2:4" in result.output and "'undefined_here' is undefined" in result.output


def test_cpu_limit_is_set_in_the_child(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel's CPU limit stops the child even when nothing else would (SIGXCPU)."""
    monkeypatch.setattr(render_worker, "TEMPLATE_SECONDS", 30.0)
    monkeypatch.setattr(templating, "_time_limit", lambda seconds: contextlib.nullcontext())
    resource = render_worker.resource
    monkeypatch.setattr(
        render_worker,
        "_allow_cpu",
        lambda seconds: resource.setrlimit(resource.RLIMIT_CPU, (1, resource.getrlimit(resource.RLIMIT_CPU)[1])),
    )
    spin = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    (tmp_path / "q.yaml.j2").write_text(QUEUE.format(expr=spin))
    assert_refused(run(tmp_path, "validate"), "q.yaml.j2", "rendering took longer than")


def test_subprocess_end_to_end(tmp_path: Path, recon: object) -> None:
    """The installed `recon` with a symlink to /dev/zero, a pipe and a power tower together."""
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "q.yaml.j2").write_text(QUEUE.format(expr="{{ 9**(9**9) }}"))
    result = recon("validate", cwd=tmp_path)  # type: ignore[operator]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for where in ("zero.yaml", "pipe.yaml", "q.yaml.j2:4"):
        assert where in result.stdout
