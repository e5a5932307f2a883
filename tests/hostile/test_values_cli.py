"""Issue 17, class 6 on the command line: every option that takes a number, a duration or a
date is parsed by one bounded type (reconciler.cli.common), so a value that would overflow
later (`--to 9999-12-31` + one day, `--since 99999999999y` as a timedelta, `--rate nan`)
is refused before the command does anything, naming the option; `recon` exits 1.

The table runs each command in-process (CliRunner, click's own exception kept); two cases
run the real `recon` console script to check the exit code and that nothing was written.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler.cli import cli
from tests.conftest import Recon

HUGE = "9" * 400


def refused(args: list[str], cwd: Path) -> str:
    """Run `recon ARGS` in `cwd`; the message it was refused with (it must be refused)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = CliRunner().invoke(cli, args, standalone_mode=False)
    error = result.exception
    assert error is not None or result.exit_code != 0, f"accepted: {args}\n{result.output}"
    if isinstance(error, click.ClickException):
        return error.format_message()
    assert isinstance(error, SystemExit) and result.exit_code == 1, (args, repr(error), result.output)
    return result.output


CASES = [
    # (args, the option named, what the message says)
    (["validate", "--as-of", "9999-12-31"], "--as-of", "outside the dates recon accepts"),
    (["validate", "--as-of", "0001-01-01"], "--as-of", "outside the dates recon accepts"),
    (["validate", "--as-of", "2026-01-01\n"], "--as-of", "is not a date"),
    (["validate", "--as-of", "2026-02-30"], "--as-of", "day is out of range"),
    (["plan", "--as-of", "20261121"], "--as-of", "is not a date"),
    (["verify-archive", "--to", "9999-12-31"], "--to", "outside the dates recon accepts"),
    (["verify-archive", "--from", "2020-01-01", "--to", "2026-01-01"], "--from/--to", "longer than the 366 days"),
    (["verify-archive", "--from", "2026-02-01", "--to", "2026-01-01"], "--from", "is after --to"),
    (["verify", "--from", "2026-01-01", "--to", "9999-12-31"], "--to", "outside the dates recon accepts"),
    (["verify", "--from", "2000-01-01", "--to", "2026-01-01"], "--from/--to", "longer than the 366 days"),
    (["search", "x", "--to", "9999-12-31"], "--to", "outside the dates recon accepts"),
    (["search", "x", "--from", "2026-13-01"], "--from", "is not a date"),
    (["sandbox", "export", "--bucket", "b", "--from", "9999-01-01"], "--from", "outside the dates recon accepts"),
    (["runtime", "--once", "--since", "99999999999y"], "--since", "longer than 1000y"),
    (["runtime", "--once", "--since", HUGE + "y"], "--since", "longer than 1000y"),
    (["runtime", "--once", "--since", "1e30y"], "--since", "is not a duration"),
    (["runtime", "--once", "--since", "30d"], "--since", "longer than 7d"),
    (["runtime", "--duration", "0s"], "--duration", "shorter than 1s"),
    (["runtime", "--duration", "1000y"], "--duration", "longer than 365d"),
    (["runtime", "--metrics-port", "70000"], "--metrics-port", "70000"),
    (["runtime", "--metrics-port", HUGE], "--metrics-port", "0<=x<=65535"),
    (["runtime", "--metrics-port", "9" * 5000], "--metrics-port", "not a valid integer"),
    (["apply", "--lock-timeout", "2h"], "--lock-timeout", "longer than 1h"),
    (["apply", "--lock-timeout", "abc"], "--lock-timeout", "'abc' is not a duration"),
    (["apply", "--parallelism", "0"], "--parallelism", "0"),
    (["import", "Queue/q", "queue-1", "--lock-timeout", "9999y"], "--lock-timeout", "longer than 1000y"),
    (["evidence", "show", "--last", "0"], "--last", "0"),
    (["evidence", "show", "--last", "1" + "0" * 30], "--last", "1000"),
    (["sandbox", "up", "--latency-ms", "1" + "0" * 12], "--latency-ms", "60000"),
    (["sandbox", "up", "--rate-429", "nan"], "--rate-429", "not a number from 0 to 1"),
    (["sandbox", "up", "--rate-5xx", "inf"], "--rate-5xx", "not a number from 0 to 1"),
    (["sandbox", "floor", "--queues", "q", "--count", "1", "--rate", "nan"], "--rate", "not a number from 0.01"),
    (["sandbox", "floor", "--queues", "q", "--count", "1", "--rate", "1e400"], "--rate", "not a number from 0.01"),
    (["sandbox", "floor", "--queues", "q", "--count", "1", "--missing-rate", "1.5"], "--missing-rate", "0 to 1"),
    (["sandbox", "floor", "--queues", "q", "--count", "1", "--seed", "-1"], "--seed", "-1"),
    (["sandbox", "floor", "--queues", "q", "--count", "1", "--ago", "9999y"], "--ago", "longer than 1000y"),
    (["sandbox", "floor", "--queues", "q", "--count", "0"], "--count", "0"),
]


@pytest.mark.parametrize(
    ("args", "option", "message"), CASES, ids=[" ".join(a if len(a) < 20 else a[:8] + "…" for a in c[0]) for c in CASES]
)
def test_bad_value_is_refused_naming_the_option(args: list[str], option: str, message: str, tmp_path: Path) -> None:
    said = refused(args, tmp_path)
    assert option in said, said
    assert message in said, said
    assert not (tmp_path / ".recon").exists(), "nothing is written on bad input"


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["validate", "--as-of", "2199-12-31"], id="last-day-in-bounds"),
        pytest.param(["validate", "--as-of", "1970-01-01"], id="first-day-in-bounds"),
    ],
)
def test_dates_at_the_bounds_are_accepted(args: list[str], tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path)
        result = CliRunner().invoke(cli, [*args, str(Path(__file__).parents[2] / "manifests/examples/fx-desk-us")])
    assert result.exit_code in (0, 3), result.output  # 3: a waiver that has expired by then
    assert "Invalid value" not in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        pytest.param(["runtime", "--once", "--since", "99999999999y"], "--since", id="runtime-since"),
        pytest.param(["verify-archive", "--to", "9999-12-31"], "--to", id="verify-archive-to"),
        pytest.param(["sandbox", "floor", "--queues", "q", "--count", "1", "--rate", "nan"], "--rate", id="floor-rate"),
    ],
)
def test_recon_exits_1_naming_the_option(recon: Recon, tmp_path: Path, args: list[str], option: str) -> None:
    result = recon(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Invalid value for '{option}'" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".recon").exists()
