"""reconciler.jsonsafe: bounded JSON reading (size, depth, malformed) without quoting input."""

from __future__ import annotations

import pytest

from reconciler.jsonsafe import JsonProblem, deeper_than, loads


def _as_json(opens: str) -> bytes:
    text = "1"
    for opener in reversed(opens):
        text = f"[{text}]" if opener == "[" else f'{{"k": {text}}}'
    return text.encode()


@pytest.mark.parametrize(
    ("text", "limit", "deeper"),
    [
        pytest.param(b"1", 0, False, id="scalar"),
        pytest.param(b"[]", 1, False, id="one-level-at-limit"),
        pytest.param(b"[[]]", 1, True, id="two-levels-over-1"),
        pytest.param(b'{"a": "[[[[[[{{{{"}', 1, False, id="brackets-in-strings-skipped"),
        pytest.param(b'["\\"[[["]', 1, False, id="escaped-quote-in-string"),
        pytest.param(b'["\\\\", [[]]]', 2, True, id="escaped-backslash-then-real-brackets"),
        pytest.param(_as_json("[{" * 32), 64, False, id="alternating-64-at-limit"),
        pytest.param(_as_json("[{" * 32 + "["), 64, True, id="alternating-65-over"),
        pytest.param(_as_json("[" * 64), 64, False, id="arrays-64-at-limit"),
        pytest.param(_as_json("{" * 65), 64, True, id="objects-65-over"),
        pytest.param(b"[" + b'"][", ' * 200 + b"[]]", 1, True, id="fake-brackets-in-strings-do-not-hide-depth"),
    ],
)
def test_deeper_than(text: bytes, limit: int, deeper: bool) -> None:
    assert deeper_than(text, limit) is deeper


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        pytest.param("[" * 100_000 + "]" * 100_000, {}, "deeper than 64 levels", id="100k-deep"),
        pytest.param("[" * 65 + "]" * 65, {}, "deeper than 64 levels", id="just-over-default"),
        pytest.param('{"a": 1}', {"max_bytes": 4}, "over the limit of 4", id="too-large"),
        pytest.param('{"secret": "hunter2"', {}, "not valid JSON at line 1", id="malformed"),
        pytest.param(b"\xff\xfe\x00", {}, "not valid JSON", id="not-utf8"),
    ],
)
def test_refused(text: str | bytes, kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(JsonProblem, match=message) as caught:
        loads(text, what="the state", **kwargs)
    assert "hunter2" not in str(caught.value)
    assert str(caught.value).startswith("the state")


def test_within_bounds_parses() -> None:
    assert loads("[" * 64 + "]" * 64) is not None
    assert loads('{"a": [1, 2, {"b": "[["}]}') == {"a": [1, 2, {"b": "[["}]}
