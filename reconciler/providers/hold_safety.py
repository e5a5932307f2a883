"""Safety rules for legal holds, shared by every provider that holds conversations.

A hold protects regulated records from deletion; lifting any part of it must be a
deliberate, approved act. `hold_rules` judges a proposed LegalHold change in manifest
shape (matter, scope, autoExtend, release):

- delete or replace without an approved release on the live hold    FORBIDDEN
- a release that lacks approvedBy, reason or ticket                  FORBIDDEN
- an approved release (before: none)                                 ONE_WAY
- narrowing the scope (users, queues or terms removed, period cut)   FORBIDDEN

Called by: the Genesys legal-hold provider, reconciler.testing.rules (the fakes' table).
"""

from __future__ import annotations

from typing import Any

from reconciler.providers.base import Action, Attributes, ProposedChange, Safety

RELEASE_FIELDS = ("approvedBy", "reason", "ticket")


def hold_rules(change: ProposedChange) -> list[tuple[Safety, str]]:
    address = f"LegalHold/{change.name}"
    if change.action in (Action.DELETE, Action.REPLACE):
        if missing_release_fields(change.before) == []:
            return []
        verb = "replacing" if change.action is Action.REPLACE else "deleting"
        return [
            (
                Safety.FORBIDDEN,
                f"{verb} {address} lifts the hold without an approved release "
                "(approvedBy, reason and ticket on the live hold)",
            )
        ]
    if change.action not in (Action.CREATE, Action.UPDATE):
        return []
    missing = missing_release_fields(change.after)
    if missing:
        return [(Safety.FORBIDDEN, f"the release lacks {', '.join(missing)}")]
    if missing == [] and change.action is Action.UPDATE and missing_release_fields(change.before) != []:
        return [(Safety.ONE_WAY, "releasing the hold allows deletions that cannot be undone")]
    narrowed = narrowing(change.before, change.after) if change.action is Action.UPDATE else []
    if narrowed:
        return [
            (
                Safety.FORBIDDEN,
                f"narrowing the hold ({', '.join(narrowed)}) releases conversations; "
                "record a release with approvedBy, reason and ticket instead",
            )
        ]
    return []


def narrowing(before: Attributes | None, after: Attributes | None) -> list[str]:
    """What an update takes out of a hold's scope: removed users, queues or search terms,
    a later `from`, an earlier or newly set `to`. Any of them lets conversations go."""
    old_scope = _dig(before, "scope") or {}
    new_scope = _dig(after, "scope") or {}
    found = []
    for key in ("users", "queues", "searchTerms"):
        removed = set(old_scope.get(key) or []) - set(new_scope.get(key) or [])
        if removed and (old_scope.get(key) or []):
            found.append(f"scope.{key} loses {', '.join(sorted(map(str, removed)))}")
    old_from, new_from = old_scope.get("from"), new_scope.get("from")
    if new_from and (old_from is None or str(new_from) > str(old_from)):
        found.append("scope.from moves later")
    old_to, new_to = old_scope.get("to"), new_scope.get("to")
    if new_to and (old_to is None or str(new_to) < str(old_to)):
        found.append("scope.to moves earlier")
    return found


def missing_release_fields(attributes: Attributes | None) -> list[str] | None:
    """None when there is no release; else the release fields that are missing or empty."""
    release = _dig(attributes, "release")
    if release is None:
        return None
    if not isinstance(release, dict):
        return list(RELEASE_FIELDS)
    return [name for name in RELEASE_FIELDS if not (isinstance(release.get(name), str) and release[name].strip())]


def _dig(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None
