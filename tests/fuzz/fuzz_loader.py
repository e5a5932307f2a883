"""Coverage-guided fuzzing of the YAML and template loader with atheris (`make fuzz`).

Each input is split by atheris's FuzzedDataProvider into a mode, a text and a variable
value, and drives one of: the YAML reader (parse_documents), the template sandbox
(templating.render, with a 1 s limit, then the rendered text through the line map and the
YAML reader), a printed value (templating.printed) in YAML contexts, or a variables file.
The only outcomes allowed are a value or a located problem (YamlProblem, SourceProblem,
ValueProblem); anything else, a hang past libFuzzer's -timeout or a crash is a finding,
and atheris stops with the input that caused it.

The renderer child's limits are not used here (atheris cannot see coverage across fork),
so the harness puts the process under a memory ceiling of its own: what the child would
refuse as a MemoryError is a SourceProblem here too.

Run:   make fuzz                     (60 s, corpus in .fuzz-corpus/)
       .venv/bin/python tests/fuzz/fuzz_loader.py -max_total_time=600 .fuzz-corpus
`one_input` is also run by tests/fuzz/test_fuzz_smoke.py on a seed corpus, without atheris.
"""

from __future__ import annotations

import resource
import sys
import tempfile
from pathlib import Path

from reconciler.errors import InputError
from reconciler.manifest import templating
from reconciler.manifest.linemap import build_line_map
from reconciler.manifest.source import SourceProblem
from reconciler.manifest.variables import load_var_files
from reconciler.manifest.yamlsafe import YamlProblem, parse_documents

CONTEXTS = ("k: {v}\n", "{{k: {v}, z: 1}}\n", "[{v}, z]\n", "- {v}\n- z\n", '- "{v}"\n', "{v}: 1\n")


def _split(data: bytes) -> tuple[int, str, str]:
    mode = data[0] % 4 if data else 0
    text = data[1:].decode("utf-8", errors="replace")
    body, _, value = text.partition("\x00")
    return mode, body, value


def one_input(data: bytes) -> None:
    """Run one input; raises only for a finding."""
    mode, text, value = _split(data)
    try:
        if mode == 0:
            parse_documents(text)
        elif mode == 1:
            rendered = templating.render(text, {"v": value, "l": [value], "m": {"k": value}}, seconds=1.0)
            build_line_map(text, rendered)
            parse_documents(rendered)
        elif mode == 2:
            printed = templating.printed(value or text)
            for context in CONTEXTS:
                _shape_kept(context, printed)
        else:
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "vars.yaml"
                path.write_text(text, encoding="utf-8")
                try:
                    load_var_files([path])
                except InputError as error:
                    assert error.diagnostics
    except (YamlProblem, SourceProblem):
        pass


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return sorted((str(type(k)), _shape(v)) for k, v in value.items()), len(value)
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return "scalar"


def _shape_kept(context: str, printed: str) -> None:
    expected = [_shape(d.data) for d in parse_documents(context.format(v="word"))]
    try:
        got = [_shape(d.data) for d in parse_documents(context.format(v=printed))]
    except YamlProblem:
        return
    if got != expected:
        raise AssertionError(f"the printed value {printed!r} changed the structure of {context!r}")


def _memory_ceiling(extra: int = 1 << 30) -> None:
    with open("/proc/self/statm", "rb") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + extra, resource.getrlimit(resource.RLIMIT_AS)[1]))


def main() -> None:
    import atheris  # noqa: PLC0415 - only `make fuzz` needs it (the 'fuzz' extra)

    atheris.instrument_all()
    _memory_ceiling()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
