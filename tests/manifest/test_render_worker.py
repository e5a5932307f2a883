"""The renderer child's protocol: the parent trusts nothing the child sends, and never
leaves a child behind."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import pytest

from reconciler.manifest import render_worker
from reconciler.manifest.render_worker import RenderBatch, TemplateJob, render_template


def _frame(payload: bytes, index: int = 0) -> bytes:
    return struct.pack("!IQ", index, len(payload)) + payload


REPLIES = [
    ("not-json", _frame(b"{nope"), "malformed reply"),
    ("not-an-object", _frame(b"[1]"), "malformed reply"),
    ("text-not-a-string", _frame(json.dumps({"text": 5}).encode()), "malformed reply"),
    (
        "line-map-of-the-wrong-length",
        _frame(json.dumps({"text": "a\nb\n", "lines": [1], "prefix": [0]}).encode()),
        "malformed reply",
    ),
    (
        "negative-line",
        _frame(json.dumps({"text": "a\n", "lines": [-1], "prefix": [0]}).encode()),
        "malformed reply",
    ),
    (
        "problem-with-a-foreign-code",
        _frame(json.dumps({"problem": {"code": "x", "message": "m", "line": 1, "column": 1, "hint": ""}}).encode()),
        "malformed reply",
    ),
    ("length-beyond-the-limit", struct.pack("!IQ", 0, 1 << 40), "larger than allowed"),
    ("reply-for-another-job", _frame(b'{"text": ""}', index=1), "out of order"),
    ("truncated-reply", struct.pack("!IQ", 0, 100) + b"{", "stopped (exit status 0)"),
    ("nothing-at-all", b"", "out of order"),
]


@pytest.mark.parametrize(("reply", "message"), [r[1:] for r in REPLIES], ids=[r[0] for r in REPLIES])
def test_a_bad_reply_is_a_diagnostic_and_the_next_template_still_renders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, reply: bytes, message: str
) -> None:
    """The first write of the first child is replaced by `reply` (a child gone wrong); the
    marker file tells the second child, forked later, that it has been done."""
    real = render_worker._write_all
    marker = tmp_path / "forged"

    def write(fd: int, data: bytes) -> None:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return real(fd, data)
        return real(fd, reply) if reply else None

    monkeypatch.setattr(render_worker, "_write_all", write)
    jobs = [TemplateJob(text="first"), TemplateJob(text="ok: {{ v }}\n")]
    with RenderBatch(jobs, {"v": "yes"}, line_maps=True) as batch:
        first, second = list(batch)
    assert first.problem is not None and message in first.problem.message, first.problem
    assert second.problem is None and second.text == "ok: yes\n"
    assert second.line_map is not None and second.line_map.template_line == [1]


def test_a_batch_closed_early_leaves_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[int] = []
    real_start = render_worker._Child.start

    def spy(*args: object) -> render_worker._Child:
        child = real_start(*args)  # type: ignore[arg-type]
        started.append(child.pid)
        return child

    monkeypatch.setattr(render_worker._Child, "start", staticmethod(spy))
    batch = RenderBatch([TemplateJob(text="a"), TemplateJob(text="b")], {}, line_maps=False)
    batch.close()
    assert started
    with pytest.raises(ChildProcessError):
        os.waitpid(started[0], os.WNOHANG)  # already reaped


def test_no_jobs_start_no_child() -> None:
    with RenderBatch([], {}, line_maps=True) as batch:
        assert list(batch) == []


def test_a_template_file_is_read_by_the_child_with_the_same_checks(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml.j2")
    with RenderBatch([TemplateJob(path=tmp_path / "pipe.yaml.j2")], {}, line_maps=False) as batch:
        (result,) = list(batch)
    assert result.problem is not None and result.problem.code == "file.not-regular"


def test_render_template_returns_the_text() -> None:
    assert render_template("a: {{ x }}-{{ y|tojson }}\n", {"x": "b", "y": [1]}) == "a: b-[1]\n"
