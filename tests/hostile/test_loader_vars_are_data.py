"""Issue 17, class 7 (second half): `--var` and `--var-file` values are data.

A `--var` value holding `\\n---\\n` and a whole resource used to add that resource. Now a
printed value cannot add a line, a key or a document, whatever the value and whatever the
filters it passed through: either the value lands whole in the one field the template put
it in, or the run is refused (exit 1) with a diagnostic naming the template line and the
variable. `| tojson` prints any value as one quoted YAML value.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from reconciler.cli import cli
from reconciler.errors import InputError
from reconciler.manifest.loader import load_estate

INJECTED = "\n---\napiVersion: recon/v1\nkind: Queue\nmetadata: {name: injected}\nspec: {regulated: false}\n"

# A Queue whose description and one label come from variables; the label sits in a flow map.
TEMPLATE = """\
apiVersion: recon/v1
kind: Queue
metadata:
  name: desk-q
  labels: {{desk: {{{{ {label} }}}}, site: eu}}
spec:
  regulated: false
  region: eu-west-1
  clientRegion: EU
  description: {{{{ {description} }}}}
"""


def run(folder: Path, *args: str) -> Result:
    with contextlib.chdir(folder):
        return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def estate(folder: Path, description: str = "'desc'", label: str = "'fx'") -> Path:
    (folder / "q.yaml.j2").write_text(TEMPLATE.format(description=description, label=label))
    return folder


HOSTILE_VALUES = [
    ("newline-document-and-resource", INJECTED),
    ("carriage-return", "x\rregulated: false"),
    ("next-line-u0085", "x\x85regulated: false"),
    ("line-separator-u2028", "x\u2028regulated: false"),
    ("paragraph-separator-u2029", "x\u2029regulated: false"),
    ("tab", "x\tregulated: false"),
    ("nul", "x\x00"),
    ("escape", "x\x1b[2J"),
    ("right-to-left-override", "desk\u202eqg"),
    ("zero-width-space", "energy\u200bdesk"),
    ("byte-order-mark", "\ufeffdesk"),
    ("key-in-the-value", "x: y"),
    ("key-at-the-end", "x:"),
    ("comment", "x # rest"),
    ("comma-splits-a-flow-map", "x, regulated: false"),
    ("flow-list", "[a, b]"),
    ("flow-map", "{regulated: false}"),
    ("closing-brace", "x}"),
    ("double-quote", 'x" y'),
    ("single-quote", "it's"),
    ("backslash", "x\\"),
    ("alias", "*anchor"),
    ("anchor", "&anchor x"),
    ("tag", "!!python/object:os.system"),
    ("local-tag", "!x"),
    ("block-scalar-literal", "|"),
    ("block-scalar-folded", ">"),
    ("sequence-entry", "- x"),
    ("lone-dash", "-"),
    ("complex-key", "? x"),
    ("flow-key-without-space", "?x"),
    ("merge-key", "<<"),
    ("document-start", "---"),
    ("document-end", "..."),
    ("leading-space-indents", "  regulated"),
    ("directive", "%YAML 1.1"),
    ("reserved-at", "@x"),
    ("reserved-backtick", "`x"),
]


@pytest.mark.parametrize("value", [v for _, v in HOSTILE_VALUES], ids=[i for i, _ in HOSTILE_VALUES])
@pytest.mark.parametrize("field", ["description", "label"])
def test_hostile_var_is_refused_naming_line_and_variable(tmp_path: Path, field: str, value: str) -> None:
    estate(tmp_path, **{field: "v"})
    with pytest.raises(InputError) as caught:
        load_estate([tmp_path], {"v": value})
    found = [d for d in caught.value.diagnostics if d.code == "template.value"]
    assert found, [d.render() for d in caught.value.diagnostics]
    assert found[0].location.line == (10 if field == "description" else 5)
    assert "the variable 'v'" in found[0].message
    assert value not in found[0].render() or len(value) <= 3  # only an indicator like '---' is named


LAUNDERING = [
    ("upper", "v|upper"),
    ("trim", "v|trim"),
    ("concatenation", "v ~ ''"),
    ("plus", "v + ''"),
    ("format-filter", "'%s'|format(v)"),
    ("percent", "'%s' % v"),
    ("str-format", "'{}'.format(v)"),
    ("method", "v.strip()"),
    ("join", "[v]|join"),
    ("string-filter", "v|string"),
    ("replace", "v|replace('-', '--')"),
    ("safe-markup", "v|safe"),
    ("escape-markup", "v|e"),
    ("indent", "v|indent(2)"),
    ("first-of-a-list", "[v]|first"),
    ("default", "undefined_name|default(v)"),
]


@pytest.mark.parametrize("expression", [e for _, e in LAUNDERING], ids=[i for i, _ in LAUNDERING])
def test_filters_and_operators_do_not_launder_a_value(tmp_path: Path, expression: str) -> None:
    estate(tmp_path, description=expression)
    with pytest.raises(InputError) as caught:
        load_estate([tmp_path], {"v": INJECTED})
    assert any(d.code == "template.value" and d.location.line == 10 for d in caught.value.diagnostics)


@pytest.mark.parametrize(
    "template",
    [
        pytest.param("{% macro m(x) %}{{ x }}{% endmacro %}{{ m(v) }}", id="through-a-macro"),
        pytest.param("{% set x %}{{ v }}{% endset %}{{ x }}", id="through-a-set-block"),
        pytest.param("{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ v }}{% endcall %}", id="call-block"),
        pytest.param("{% filter upper %}{{ v }}{% endfilter %}", id="filter-block"),
        pytest.param("{% for line in v.split(',') %}{{ line }}{% endfor %}", id="loop-over-parts"),
    ],
)
def test_template_blocks_do_not_launder_a_value(tmp_path: Path, template: str) -> None:
    estate(tmp_path, description="x")
    (tmp_path / "q.yaml.j2").write_text(TEMPLATE.format(description="x", label="'y'").replace("{{ x }}", template))
    with pytest.raises(InputError) as caught:
        load_estate([tmp_path], {"v": INJECTED.replace("\n", "\n,")})
    assert any(d.code == "template.value" for d in caught.value.diagnostics), caught.value.diagnostics


@pytest.mark.parametrize("value", [v for _, v in HOSTILE_VALUES], ids=[i for i, _ in HOSTILE_VALUES])
def test_tojson_prints_any_value_as_one_value(tmp_path: Path, value: str) -> None:
    estate(tmp_path, description="v | tojson", label="l")
    try:
        loaded = load_estate([tmp_path], {"v": value, "l": "fx"})
    except InputError as error:  # the Queue's own checks may refuse the text, in its one field
        assert {d.field for d in error.diagnostics} == {"spec.description"}, error.diagnostics
        return
    assert list(loaded.estate.resources) == ["Queue/desk-q"]
    assert loaded.estate.resources["Queue/desk-q"].spec.description == value  # type: ignore[attr-defined]


SAFE_VALUES = [
    "eu-west-1",
    "trader.one@bank.example",
    "09:30",
    "https://feeds.example/v1/eur-usd",
    "-5",
    "a - b",
    "Gas desk (EU) 2",
    "Zürich Energie",
    "50%",
    "C++",
    "",
]


@pytest.mark.parametrize("value", SAFE_VALUES, ids=[repr(v) for v in SAFE_VALUES])
def test_ordinary_values_print_as_they_are(tmp_path: Path, value: str) -> None:
    (tmp_path / "q.yaml.j2").write_text(TEMPLATE.format(description="v", label="l").replace("{{ v }}", "'{{ v }}'"))
    loaded = load_estate([tmp_path], {"v": value, "l": "fx"})
    assert list(loaded.estate.resources) == ["Queue/desk-q"]
    assert loaded.estate.resources["Queue/desk-q"].spec.description == value  # type: ignore[attr-defined]


def test_injection_through_the_cli_var(tmp_path: Path) -> None:
    estate(tmp_path, description="v")
    result = run(tmp_path, "validate", "--var", f"v={INJECTED}")
    assert result.exit_code == 1, result.output
    assert "q.yaml.j2:10" in result.output and "line break (U+000A)" in result.output
    assert "the variable 'v'" in result.output
    assert "Queue/injected" not in result.output


def test_injection_through_a_var_file(tmp_path: Path) -> None:
    estate(tmp_path, description="desk.text")
    (tmp_path / "vars.yaml").write_text('desk:\n  text: "x\\n---\\nkind: Queue\\n"\n')
    for command in ("validate", "render", "plan"):
        result = run(tmp_path, command, "--var-file", "vars.yaml")
        assert result.exit_code == 1, (command, result.output)
        assert "q.yaml.j2:10" in result.output and "the variable 'desk.text'" in result.output


def test_end_to_end_with_the_installed_recon(tmp_path: Path, recon: object) -> None:
    estate(tmp_path, description="v")
    result = recon("validate", "--var", f"v={INJECTED}", cwd=tmp_path)  # type: ignore[operator]
    assert result.returncode == 1
    assert "q.yaml.j2:10" in result.stdout and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argument",
    [
        pytest.param("x\n=1", id="newline-in-the-name"),
        pytest.param("x-y=1", id="dash-in-the-name"),
        pytest.param("1x=1", id="starts-with-a-digit"),
        pytest.param("for=1", id="a-keyword"),
    ],
)
def test_var_names_are_matched_in_full(tmp_path: Path, argument: str) -> None:
    result = run(estate(tmp_path), "validate", "--var", argument)
    assert result.exit_code == 1
    assert "is not KEY=VALUE" in result.output


def test_var_file_keys_must_be_names(tmp_path: Path) -> None:
    (tmp_path / "vars.yaml").write_text("ok: 1\n'bad key': 2\n")
    result = run(estate(tmp_path), "validate", "--var-file", "vars.yaml")
    assert result.exit_code == 1
    assert "vars.yaml:2:1" in result.output and "not a variable name" in result.output


def test_examples_still_render_and_validate(tmp_path: Path) -> None:
    examples = Path(__file__).resolve().parents[2] / "manifests" / "examples"
    for desk in sorted(examples.iterdir()):
        assert run(tmp_path, "validate", str(desk)).exit_code == 0, desk
        assert run(tmp_path, "render", str(desk)).exit_code == 0, desk
