"""Protections that have no natural home in the one-error-per-case corpus."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.errors import InputError
from reconciler.manifest import render_worker
from reconciler.manifest.loader import load_estate
from reconciler.manifest.source import SourceProblem
from reconciler.manifest.yamlsafe import YamlProblem, parse_documents

TOKEN = "ghp_" + "Zq8vK2mWp4Rt7Yx1Ln5BaC3dE6fG9hJ0kL2m"


def test_secret_pasted_as_a_key_is_never_echoed(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        f"apiVersion: recon/v1\nkind: RetentionPolicy\nmetadata: {{name: r}}\nspec:\n  retain: 7y\n  {TOKEN}: 1\n"
    )
    with pytest.raises(InputError) as caught:
        load_estate([tmp_path])
    rendered = "\n".join(d.render() + d.field + d.message + d.hint for d in caught.value.diagnostics)
    assert TOKEN not in rendered
    assert any(d.code == "secret.literal" and d.location.line == 6 for d in caught.value.diagnostics)


@pytest.mark.parametrize(
    ("text", "hint"),
    [("a:\n\tb: 1\n", "replace the tab"), ("a: [1\n", "")],
    ids=["tab-indentation-gets-a-hint", "other-syntax-errors-do-not"],
)
def test_syntax_hints(text: str, hint: str) -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_documents(text)
    if hint:
        assert hint in caught.value.hint
    else:
        assert caught.value.hint == ""


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ("{% for i in range(100000) %}x{% endfor %}", "template.range"),
        (
            "{% for i in range(10000) %}{% for j in range(10000) %}0123456789{% endfor %}{% endfor %}",
            "template.too-large",
        ),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "template.unsafe"),
        ("{{ cycler.__init__.__globals__ }}", "template.unsafe"),
    ],
    ids=["range-bomb", "output-bomb-stops-at-10-MiB", "class-walk-escape", "globals-escape"],
)
def test_hostile_templates_fail_fast(template: str, code: str) -> None:
    with pytest.raises(SourceProblem) as caught:
        render_worker.render_template(template, {})
    assert caught.value.code == code


def test_template_that_loops_without_output_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render_worker, "TEMPLATE_SECONDS", 0.2)
    spin = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    with pytest.raises(SourceProblem) as caught:
        render_worker.render_template(spin, {})
    assert caught.value.code == "template.timeout"
