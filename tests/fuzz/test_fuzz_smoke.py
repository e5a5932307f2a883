"""The fuzzing harness as a quick smoke test: every seed, in every mode, without atheris.

The seeds are the example manifests and templates, the invalid-manifest corpus and a few
hostile inputs from issue 17; `make fuzz` starts from the same seeds (written to its corpus
folder by `python tests/fuzz/test_fuzz_smoke.py DIR`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fuzz_loader import one_input

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = [
    "{{ 9**(9**9) }}",
    "{{ ('x'*2000000000)|length }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "{% include 'x' %}",
    "a: &a [*a]",
    "[" * 80,
    "a: " + "9" * 400,
    "k: {{ v }}\x00x\n---\nkind: Queue",
    "k: {{ v | tojson }}\x00\u2028'\"",
]


def seeds() -> list[bytes]:
    texts = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "manifests").rglob("*.y*ml*"))]
    texts += [
        p.read_text(encoding="utf-8", errors="replace")
        for p in sorted((ROOT / "tests" / "fixtures" / "invalid").rglob("*.y*ml*"))
        if p.stat().st_size < 100_000
    ]
    texts += HOSTILE
    return [bytes([mode]) + text.encode("utf-8") for text in texts for mode in range(4)]


@pytest.mark.parametrize("data", seeds(), ids=lambda data: f"mode{data[0]}-{len(data)}b")
def test_seed_is_handled(data: bytes) -> None:
    one_input(data)


if __name__ == "__main__":
    corpus = Path(sys.argv[1])
    corpus.mkdir(parents=True, exist_ok=True)
    for number, data in enumerate(seeds()):
        (corpus / f"seed-{number:04d}").write_bytes(data)
