"""The YAML reader refuses what would cost too much before it has cost it.

Each hostile text is generated (some are megabytes) and must fail with the named code and a
line; the timing and memory they used to take (tens of seconds, over a gigabyte) is what
the composer's limits remove, so the cases are also run under a memory ceiling.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Iterator

import pytest

from reconciler.manifest.yamlcompose import SMALL_TEXT_CHARS
from reconciler.manifest.yamlsafe import Budget, YamlProblem, parse_documents

TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
def memory_ceiling() -> Iterator[None]:
    """At most 1 GiB more address space than now, for the duration of the test."""
    with open("/proc/self/statm") as statm:
        used = int(statm.read().split()[0]) * resource.getpagesize()
    previous = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used + (1 << 30), previous[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, previous)


def _merge_chain(levels: int) -> str:
    lines = ["a0: &a0 {k0: 1}"]
    lines += [f"a{i}: &a{i} {{<<: *a{i - 1}, k{i}: 1}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


HOSTILE: list[tuple[str, Callable[[], str], str, int]] = [
    ("flow-list-of-five-million-items", lambda: "[" + "a," * (TEN_MIB // 2) + "]", "yaml.too-large", 1),
    ("a-million-keys-in-one-map", lambda: "".join(f"k{i}: 1\n" for i in range(1_000_000)), "yaml.too-large", 0),
    ("a-million-tiny-documents", lambda: "--- a\n" * 1_000_000, "yaml.too-many-documents", 10_001),
    ("ten-thousand-and-one-empty-documents", lambda: "---\n" * 10_001, "yaml.too-many-documents", 0),
    ("nesting-beyond-64-in-a-big-file", lambda: "[" * 70 + " " * 300_000 + "]" * 70, "yaml.too-deep", 1),
    ("nesting-beyond-64-in-a-small-file", lambda: "[" * 70 + "]" * 70, "yaml.too-deep", 1),
    (
        "merge-key-of-100k-aliases",
        lambda: "a: &a {k: 1, j: 2}\nb: {<<: [" + "*a," * 100_000 + "]}\n",
        "yaml.too-large",
        0,
    ),
    ("merge-chain-grows-quadratically", lambda: _merge_chain(3000), "yaml.too-large", 0),
    ("map-merging-itself", lambda: "a: &a {<<: *a}\n", "yaml.merge", 1),
    ("merge-key-of-a-scalar", lambda: "a: {<<: 1}\n", "yaml.merge", 1),
    ("400-digit-integer", lambda: "retain: " + "9" * 400 + "\n", "yaml.number-range", 1),
    ("5000-digit-integer-beyond-int-max-str-digits", lambda: "a: " + "9" * 5000 + "\n", "yaml.number-range", 1),
    ("integer-just-beyond-64-bits", lambda: "a: 9223372036854775808\n", "yaml.number-range", 1),
    ("hex-integer-beyond-64-bits", lambda: "a: 0x1ffffffffffffffff\n", "yaml.number-range", 1),
    ("float-that-overflows-to-infinity", lambda: "a: 1e400\n", "yaml.number-range", 1),
    ("explicit-infinity", lambda: "a: .inf\n", "yaml.number-range", 1),
    ("not-a-number", lambda: "a: .nan\n", "yaml.number-range", 1),
]


@pytest.mark.usefixtures("memory_ceiling")
@pytest.mark.parametrize(("make", "code", "line"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_yaml_is_refused_with_its_line(make: Callable[[], str], code: str, line: int) -> None:
    with pytest.raises(YamlProblem) as caught:
        parse_documents(make())
    assert caught.value.code == code, caught.value.message
    if line:
        assert caught.value.line == line


@pytest.mark.parametrize(
    "text",
    ["a: 9223372036854775807\n", "a: -9223372036854775808\n", "a: 0x7fffffffffffffff\n", "a: 1e300\n"],
    ids=["int64-max", "int64-min", "hex-int64-max", "large-finite-float"],
)
def test_numbers_within_range_are_read(text: str) -> None:
    assert parse_documents(text)[0].data["a"] == yaml_value(text)


def yaml_value(text: str) -> object:
    raw = text.split(": ", 1)[1].strip()
    return int(raw, 16) if raw.startswith("0x") else float(raw) if "e" in raw else int(raw)


def test_a_rejected_number_is_not_echoed() -> None:
    digits = "31415926535897932384626433832795028841971"
    with pytest.raises(YamlProblem) as caught:
        parse_documents(f"a: {digits}\n")
    assert digits not in caught.value.message


def test_a_long_key_is_shortened_in_messages() -> None:
    key = "k" * 5000
    with pytest.raises(YamlProblem) as caught:
        parse_documents(f'"{key}": 1\n"{key}": 2\n'.replace(key, key[:1000]))
    assert caught.value.code == "yaml.duplicate-key"
    assert len(caught.value.message) < 200


def test_the_budget_is_shared_by_the_files_of_one_load() -> None:
    budget = Budget(values=25)
    parse_documents("".join(f"k{i}: 1\n" for i in range(10)), budget)
    assert budget.values == 14  # the map and its ten values
    with pytest.raises(YamlProblem) as caught:
        parse_documents("".join(f"k{i}: 1\n" for i in range(20)), budget)
    assert caught.value.code == "yaml.budget"


def _deep_long_keys(items: int) -> str:
    key = "k" * 1000
    nested = "".join(f"{'  ' * level}? {key}{level}\n{'  ' * level}:\n" for level in range(60))
    return nested + "  " * 60 + "[" + ",".join("x" for _ in range(items)) + "]\n"


def test_long_keys_nested_deep_exhaust_the_position_budget() -> None:
    """60 levels of 1,000-character keys: each value's path is 60,000 characters long."""
    assert parse_documents(_deep_long_keys(10))
    with pytest.raises(YamlProblem) as caught:
        parse_documents(_deep_long_keys(150_000))
    assert caught.value.code == "yaml.budget", caught.value.message


def test_small_and_large_texts_compose_alike() -> None:
    """The libyaml composer (small texts) and ours (large ones) give the same values and
    positions."""
    document = "a: &x {b: [1, 2.5, true, null, 2024-01-02], c: 'q'}\nd: *x\ne: {<<: *x, f: 1}\n"
    small = parse_documents(document)
    large = parse_documents(document + "#" * (SMALL_TEXT_CHARS + 1) + "\n")
    assert [d.data for d in small] == [d.data for d in large]
    assert [d.values for d in small] == [d.values for d in large]
    assert [d.keys for d in small] == [d.keys for d in large]
