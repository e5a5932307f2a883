"""Map lines of a rendered jinja2 template back to the template lines that produced them.

Errors and findings must point at the file a person edits, not at the rendered text: a
SARIF annotation on line 47 of a 25-line template helps nobody. jinja2 keeps no such map,
so this module rebuilds one. Each template line becomes a pattern (literal text, with every
`{{ ... }}` and inline `{% ... %}` a wildcard); a rendered line can come from any template
line whose pattern it matches. A Viterbi alignment then picks the cheapest path through the
template: moving on to the next output line is free, skipping output lines (a false
condition) costs one per line skipped, jumping back costs 1 to the first line of a
`{% for %}` body (the next iteration) and 3 elsewhere, and a rendered line that matches no
pattern (multi-line output of one expression) costs 5 and keeps the previous line.

Both the template and the rendered text come with a pull request, so the work is bounded:
the wildcards are atomic groups (a line with twenty `{{ }}` cannot make the regex engine
backtrack exponentially), and once the alignment has taken MAX_WORK steps (candidate lines
tested or transitions weighed: about 0.6 s; every benchmark template takes under 100,000)
the remaining rendered lines keep the last line found: positions get coarser, never slower.

Called by: reconciler.manifest.render_worker, in the renderer child, for `*.j2` files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EXPRESSION = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")
_STATEMENT = re.compile(r"\{%.*?%\}|\{#.*?#\}")
_FOR = re.compile(r"\{%-?\s*for\b")
_UNMATCHED = 5.0
_BACK_TO_LOOP = 1.0
_BACK_ELSEWHERE = 3.0
MAX_WORK = 2_000_000


@dataclass(frozen=True, slots=True)
class LineMap:
    """`template_line[i]` is the template line of rendered line i+1; `literal_prefix[i]` is how
    many leading characters of that line are literal template text (columns there are exact)."""

    template_line: list[int]
    literal_prefix: list[int]

    def map(self, line: int, column: int) -> tuple[int, int]:
        if not 1 <= line <= len(self.template_line):
            return line, column
        template_line = self.template_line[line - 1]
        keep = column - 1 <= self.literal_prefix[line - 1]
        return template_line, column if keep else 0


def _line_pattern(parts: list[str]) -> re.Pattern[str]:
    """`^p0 .*? p1 .*? ... pk \\s*$` for the literal parts of a template line, with each middle
    wildcard atomic: the leftmost occurrence of a middle part is always a right choice, so
    committing to it loses no match and bounds the search (the last part must end the line)."""
    parts = [*parts[:-1], parts[-1].rstrip()]
    middle = "".join(f"(?>.*?{re.escape(part)})" for part in parts[1:-1])
    last = f".*?{re.escape(parts[-1])}" if len(parts) > 1 else ""
    return re.compile(f"^{re.escape(parts[0])}{middle}{last}\\s*$")


def build_line_map(template: str, rendered: str) -> LineMap:
    template_lines = template.splitlines()
    patterns: dict[int, re.Pattern[str]] = {}
    prefixes: dict[int, int] = {}
    loop_starts: set[int] = set()
    after_for = False
    for number, text in enumerate(template_lines, start=1):
        if _STATEMENT.search(text) and not _STATEMENT.sub("", text).strip():
            after_for = after_for or bool(_FOR.search(text))
            continue
        patterns[number] = _line_pattern(_EXPRESSION.split(text))
        first = _EXPRESSION.search(text)
        prefixes[number] = first.start() if first else len(text)
        if after_for:
            loop_starts.add(number)
        after_for = bool(_FOR.search(text))
    output_lines = sorted(patterns)
    rank = {line: i for i, line in enumerate(output_lines)}

    def step(previous: int, current: int) -> float:
        if previous == 0:
            return float(rank[current])
        if current > previous:
            return float(rank[current] - rank[previous] - 1)
        return _BACK_TO_LOOP if current in loop_starts else _BACK_ELSEWHERE

    # Viterbi over candidate template lines; state 0 = before the first line.
    costs: dict[int, float] = {0: 0.0}
    trail: list[dict[int, int]] = []
    rendered_lines = rendered.splitlines()
    memo: dict[str, list[int]] = {}
    work = 0
    for text in rendered_lines:
        candidates = memo.get(text)
        if candidates is None:
            work += len(output_lines)
            if work > MAX_WORK:
                break
            candidates = memo[text] = [line for line in output_lines if patterns[line].match(text)]
        work += len(candidates) * len(costs)
        if work > MAX_WORK:
            break
        back: dict[int, int] = {}
        new_costs: dict[int, float] = {}
        if not candidates:
            for state, cost in costs.items():
                new_costs[state] = cost + _UNMATCHED
                back[state] = state
        else:
            for candidate in candidates:
                best_state, best_cost = min(
                    ((state, cost + step(state, candidate)) for state, cost in costs.items()),
                    key=lambda pair: pair[1],
                )
                new_costs[candidate] = best_cost
                back[candidate] = best_state
        costs = new_costs
        trail.append(back)
    state = min(costs, key=lambda s: costs[s]) if costs else 0
    mapped: list[int] = [state] * len(rendered_lines)  # lines beyond the budget keep the last
    for index in range(len(trail) - 1, -1, -1):
        mapped[index] = state
        state = trail[index][state]
    mapped = [line if line else 1 for line in mapped]
    literal = [
        prefixes.get(line, 0) if patterns.get(line) and patterns[line].match(text) else 0
        for line, text in zip(mapped, rendered_lines, strict=True)
    ]
    return LineMap(template_line=mapped, literal_prefix=literal)
