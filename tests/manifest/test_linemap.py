"""Rendered template lines map back to the template line a person edits."""

from __future__ import annotations

import pytest

from reconciler.manifest.linemap import build_line_map
from reconciler.manifest.render_worker import render_template

LOOP_THEN_TAIL = """\
{#- a comment line #}
{%- for d in ["a", "b"] %}
---
kind: Queue
name: desk-{{ d }}
{%- endfor %}
---
kind: Queue
name: tail
"""

CONDITIONAL = """\
first: 1
{%- if flag %}
skipped: 2
{%- endif %}
last: 3
"""

NESTED = """\
{%- for d in ["a", "b"] %}
desk: {{ d }}
members:
{%- for m in ["x", "y"] %}
  - {{ m }}
{%- endfor %}
{%- endfor %}
"""


@pytest.mark.parametrize(
    ("template", "variables", "expected"),
    [
        pytest.param(LOOP_THEN_TAIL, {}, [1, 3, 4, 5, 3, 4, 5, 7, 8, 9], id="loop-body-then-lines-after-the-loop"),
        pytest.param(CONDITIONAL, {"flag": False}, [1, 5], id="false-condition-skips-its-lines"),
        pytest.param(CONDITIONAL, {"flag": True}, [1, 3, 5], id="true-condition-keeps-its-lines"),
        pytest.param(NESTED, {}, [1, 2, 3, 5, 5, 2, 3, 5, 5], id="nested-loops"),
    ],
)
def test_rendered_lines_map_to_template_lines(template: str, variables: dict[str, object], expected: list[int]) -> None:
    rendered = render_template(template, variables)
    line_map = build_line_map(template, rendered)
    assert line_map.template_line == expected, rendered


def test_columns_kept_only_within_literal_text() -> None:
    template = "name: desk-{{ d }} # note\n"
    line_map = build_line_map(template, render_template(template, {"d": "abc"}))
    assert line_map.map(1, 7) == (1, 7)
    assert line_map.map(1, 20) == (1, 0)


def test_multiline_expression_output_stays_on_its_line() -> None:
    """One expression's output over several lines (a macro's: a variable's value may not)."""
    template = "header: 1\n{{ block() }}\nfooter: 2\n"
    rendered = "header: 1\na: 1\nb: 2\nc: 3\nfooter: 2\n"
    assert build_line_map(template, rendered).template_line == [1, 2, 2, 2, 3]
