"""Properties of the loader, checked on inputs hypothesis makes up (issue 17, "habits").

- any text or bytes, as a manifest, a template or a variables file, ends in a value or a
  located problem (YamlProblem, SourceProblem, InputError), never another exception;
- a printed template value cannot change the YAML structure around it: for every value
  the sandbox accepts, each context a template may put it in (block and flow maps, lists,
  quoted scalars, the middle of a plain scalar) parses to the same keys and lengths as a
  plain word does; a value it refuses is refused with `template.value`;
- whatever a variable holds, a load gives the one resource the template declares or a
  diagnostic, never a second resource;
- rendering is deterministic.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.errors import InputError
from reconciler.manifest import templating
from reconciler.manifest.loader import load_estate
from reconciler.manifest.source import SourceProblem, read_text
from reconciler.manifest.variables import load_var_files
from reconciler.manifest.yamlsafe import YamlProblem, parse_documents

YAMLISH = st.text(alphabet=st.sampled_from(list("ab: -[]{},#&*!|>'\"\n\t?%@`~.0123456789eE+\\")), max_size=200)
ANY_TEXT = st.one_of(YAMLISH, st.text(max_size=200))
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FEW
@given(ANY_TEXT)
def test_any_text_parses_or_is_a_located_problem(text: str) -> None:
    try:
        parse_documents(text)
    except YamlProblem as problem:
        assert problem.line >= 0 and problem.code.startswith("yaml.")


@FEW
@given(st.binary(max_size=300))
def test_any_bytes_read_or_are_a_located_problem(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.yaml"
        path.write_bytes(data)
        try:
            parse_documents(read_text(path))
        except (SourceProblem, YamlProblem) as problem:
            assert problem.code.startswith(("file.", "yaml."))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ANY_TEXT, st.booleans())
def test_any_manifest_or_template_loads_or_is_an_input_error(text: str, as_template: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / ("m.yaml.j2" if as_template else "m.yaml")).write_text(text)
        (Path(folder) / "vars.yaml").write_text(text)
        try:
            load_estate([folder])
        except InputError as error:
            assert error.diagnostics
        try:
            load_var_files([Path(folder) / "vars.yaml"])
        except InputError as error:
            assert error.diagnostics


CONTEXTS = [
    "k: {v}\nz: 1\n",
    "k: pre-{v}-post\nz: 1\n",
    "{{k: {v}, z: 1}}\n",
    "{{k: a{v}b, z: 1}}\n",
    "[{v}, z]\n",
    "- {v}\n- z\n",
    '- "{v}"\n- z\n',
    "- '{v}'\n- z\n",
    "{v}: 1\nz: 1\n",
    "k:\n  - {v}\n  - z\n",
    "---\n{v}\n---\nz\n",
]


def shape(value: Any) -> Any:
    """The structure of a parsed value: keys and lengths, not scalars (their types may change)."""
    if isinstance(value, dict):
        return {"keys": len(value), "values": [shape(v) for v in value.values()]}
    if isinstance(value, list):
        return [shape(v) for v in value]
    return "scalar"


def _is_null(text: str) -> bool:
    try:
        return not parse_documents(f"{text}\n")
    except YamlProblem:
        return False


VALUES = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.sampled_from(list("ab: -[]{},#&*!|>'\"?%@`.\\\n\r\t\x85\u2028 <=~")), max_size=12),
)


@settings(max_examples=500, deadline=None)
@given(VALUES)
def test_an_accepted_value_never_changes_the_structure(value: str) -> None:
    try:
        printed = templating.printed(value)
    except templating.ValueProblem:
        return
    for context in CONTEXTS:
        if context.startswith("---") and _is_null(printed):
            continue  # "", "~", "null" make their document empty (one fewer, never one more)
        expected = [shape(d.data) for d in parse_documents(context.format(v="word"))]
        try:
            got = [shape(d.data) for d in parse_documents(context.format(v=printed))]
        except YamlProblem:
            continue  # an error, never a different structure
        assert got == expected, (context, value)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.text(max_size=5), max_size=3), st.integers(), st.floats()))
def test_tojson_always_reads_back_as_the_value(value: Any) -> None:
    try:
        text = templating.render("k: {{ v | tojson }}\n", {"v": value})
    except SourceProblem as problem:  # NaN and infinity have no JSON form
        assert problem.code == "template.error"
        return
    try:
        (document,) = parse_documents(text)
    except YamlProblem as problem:  # a float YAML's 64-bit reader cannot hold
        assert problem.code == "yaml.number-range"
        return
    assert document.data == {"k": value}


QUEUE = """\
apiVersion: recon/v1
kind: Queue
metadata:
  name: desk-q
  labels: {{desk: {label}}}
spec:
  regulated: false
  region: eu-west-1
  clientRegion: EU
  description: {description}
"""


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES, st.sampled_from(["{{ v }}", "'{{ v }}'", '"{{ v }}"', "x-{{ v }}", "{{ v | tojson }}"]))
def test_no_variable_value_adds_a_resource(value: str, placement: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        text = QUEUE.format(label=placement, description=placement)
        (Path(folder) / "q.yaml.j2").write_text(text)
        try:
            loaded = load_estate([folder], {"v": value})
        except InputError as error:
            assert {d.resource for d in error.diagnostics} <= {"", "Queue/desk-q"}, error.diagnostics
            return
        assert list(loaded.estate.resources) == ["Queue/desk-q"]


@settings(max_examples=50, deadline=None)
@given(ANY_TEXT, st.dictionaries(st.sampled_from(["a", "b", "v"]), st.text(max_size=10), max_size=3))
def test_rendering_is_deterministic(text: str, variables: dict[str, str]) -> None:
    def outcome() -> tuple[str, str]:
        try:
            return ("text", templating.render(text, variables))
        except SourceProblem as problem:
            return (problem.code, f"{problem.line}:{problem.message}")

    assert outcome() == outcome()


@pytest.mark.parametrize(
    "text",
    ["{{ [1, 2]|random }}", "{{ lipsum() }}", "{% for x in {'b': 1, 'a': 2} %}{{ x }}{% endfor %}"],
    ids=["random-filter-removed", "lipsum-removed", "dict-order-is-insertion-order"],
)
def test_no_source_of_randomness(text: str) -> None:
    try:
        first = templating.render(text, {})
    except SourceProblem:
        return
    assert all(templating.render(text, {}) == first for _ in range(5))
