"""What the fake providers know about each kind: attribute schemas and the safety table.

`FAKE_SCHEMAS` says which lists are sets and which attributes force a replace, per kind.
`default_classifier` is the safety table the fake providers use unless a test passes its
own `classifier`; it mirrors the rules the real providers must enforce, so engine tests
exercise one-way and forbidden changes without a cloud account. `fixed_classifier` builds
a classifier that returns one safety class for every change (to force a case).

Called by: reconciler.testing.fake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.durations import Duration
from reconciler.providers.base import Action, AttributeSchema, Classification, ProposedChange, Safety, strongest
from reconciler.providers.hold_safety import hold_rules

Classifier = Callable[[ProposedChange], Classification]

# The fake providers' schemas. The real providers (Genesys, AWS, TradeSense) will own their
# own; these mirror what those platforms do so that fake plans look like real ones.
FAKE_SCHEMAS: dict[str, AttributeSchema] = {
    "ArchiveBucket": AttributeSchema(
        set_paths=frozenset({("readers",)}),
        replace_paths=frozenset({("bucketName",), ("region",)}),
    ),
    "LegalHold": AttributeSchema(
        set_paths=frozenset({("scope", "users"), ("scope", "queues"), ("scope", "searchTerms")}),
    ),
    "RetentionPolicy": AttributeSchema(),
    "RecordingSettings": AttributeSchema(),
    "RecordingPolicy": AttributeSchema(
        set_paths=frozenset({("regimes",), ("metadataKeys",), ("appliesTo", "queues")}),
    ),
    "Queue": AttributeSchema(
        set_paths=frozenset({("members",)}),
        replace_paths=frozenset({("region",)}),  # a queue lives in one org; another region is another org
    ),
    "MarketDataFeed": AttributeSchema(
        set_paths=frozenset({("appliesTo", "queues")}),
    ),
    "CollectorTopology": AttributeSchema(
        set_paths=frozenset({("collectors", "*", "traders")}),
    ),
}


def default_classifier(change: ProposedChange) -> Classification:
    """The fake providers' safety table. Pure: looks only at `change`.

    ArchiveBucket
      - delete or replace                                   FORBIDDEN (deleting an archive,
        "deleting a locked archive" when it has Object Lock)
      - objectLock.mode COMPLIANCE → GOVERNANCE or removed   FORBIDDEN
      - objectLock.defaultRetention shortened, before mode COMPLIANCE   FORBIDDEN
      - objectLock.defaultRetention lengthened, before mode COMPLIANCE  ONE_WAY
      - Object Lock enabled on an existing bucket           ONE_WAY (cannot be turned off)
      - objectLock.mode GOVERNANCE → COMPLIANCE              ONE_WAY
      Durations compare by length (7y < 2557d, 2w = 14d); an unreadable one counts as
      shortened, an absent one as zero.
    LegalHold
      - delete or replace, unless the live hold carries a release with approvedBy, reason
        and ticket                                          FORBIDDEN
      - create or update to a release missing any of the three   FORBIDDEN
      - update that releases the hold (approved release)    ONE_WAY (the deletions the
        release allows cannot be undone)
    Everything else (creates, other updates, no-op, forget) REVERSIBLE.

    When several rules apply the most severe wins; its reasons are joined with "; ".
    """
    found: list[tuple[Safety, str]] = []
    if change.kind == "ArchiveBucket":
        found.extend(_archive_rules(change))
    elif change.kind == "LegalHold":
        found.extend(hold_rules(change))
    return strongest(found)


def fixed_classifier(safety: Safety, reason: str = "forced by test") -> Classifier:
    """A classifier that judges every change `safety` (to force a case in engine tests)."""

    def classify(change: ProposedChange) -> Classification:
        return Classification(safety, reason)

    return classify


def _archive_rules(change: ProposedChange) -> list[tuple[Safety, str]]:
    address = f"ArchiveBucket/{change.name}"
    before_lock = _dig(change.before, "objectLock")
    if change.action in (Action.DELETE, Action.REPLACE):
        verb = "replacing" if change.action is Action.REPLACE else "deleting"
        what = "a locked archive" if before_lock else "an archive bucket and the recordings in it"
        return [(Safety.FORBIDDEN, f"{verb} {address} means deleting {what}")]
    if change.action is not Action.UPDATE or change.before is None:
        return []
    after_lock = _dig(change.after, "objectLock")
    before_mode = _dig(before_lock, "mode")
    after_mode = _dig(after_lock, "mode")
    found: list[tuple[Safety, str]] = []
    if before_mode == "COMPLIANCE":
        if after_mode != "COMPLIANCE":
            found.append((Safety.FORBIDDEN, "Object Lock COMPLIANCE mode cannot be weakened"))
        before_retention = _dig(before_lock, "defaultRetention")
        after_retention = _dig(after_lock, "defaultRetention")
        if before_retention != after_retention:
            order = _compare(after_retention, before_retention)
            if order is None or order < 0:
                found.append(
                    (
                        Safety.FORBIDDEN,
                        f"COMPLIANCE retention cannot be shortened ({before_retention} → {after_retention})",
                    )
                )
            elif order > 0:
                found.append(
                    (
                        Safety.ONE_WAY,
                        f"COMPLIANCE retention {before_retention} → {after_retention} cannot be shortened again",
                    )
                )
    if before_lock is not None and after_lock is None:
        found.append((Safety.FORBIDDEN, "Object Lock cannot be disabled once enabled"))
    elif before_lock is None and after_lock is not None:
        found.append((Safety.ONE_WAY, "Object Lock cannot be turned off once enabled"))
    elif before_mode != "COMPLIANCE" and after_mode == "COMPLIANCE":
        found.append((Safety.ONE_WAY, "COMPLIANCE mode cannot be left once entered"))
    return found


def _dig(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _compare(after: Any, before: Any) -> int | None:
    """1, 0 or -1 as duration `after` is longer than, as long as, or shorter than `before`
    (absent counts as zero); None when either cannot be read (treated as shortened, the
    safe answer for a COMPLIANCE bucket)."""
    try:
        after_ms = 0 if after is None else Duration.parse(str(after)).milliseconds
        before_ms = 0 if before is None else Duration.parse(str(before)).milliseconds
    except ValueError:
        return None
    return (after_ms > before_ms) - (after_ms < before_ms)
