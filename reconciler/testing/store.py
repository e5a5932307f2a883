"""The fake "live platform": every object the fake providers manage, kind → name → object.

A `FakeStore` plays the platform's side of the Provider protocol. It assigns ids on create
(deterministic: `queue-000001`, `archivebucket-000002`, one counter per store), remembers
who changed each object last, and counts every provider call it receives in `calls` so
tests can assert "no duplicate creates" or "observe used one list call".

Two flavours:

- `FakeStore()` lives in memory only (engine tests, the benchmark).
- `FakeStore.open(path)` is backed by a JSON file: it loads the file when present and
  writes every mutation through atomically (temporary file + `os.replace`, no fsync), and
  re-reads the file whenever it changed on disk (another process, or a person editing it).
  Separate processes (CLI invocations against the sandbox target) therefore see the same
  estate. Concurrent writers are last-writer-wins on the whole file; the fake is not a
  database and the CLI holds its state lock while applying anyway.

`put` and `remove` simulate a person changing the platform by hand (a console edit); they
are not provider calls and are not counted. The methods provider code uses (`create_object`,
`update_object`, `delete_object`, `list_objects`) are counted by the provider, not here.

Called by: reconciler.testing.fake (FakeProvider), tests, the CLI's sandbox target.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import ReconError
from reconciler.providers.base import Attributes

FORMAT_VERSION = 1


class FakeStoreError(ReconError):
    """The fake store's file cannot be read or written (bad JSON, hand edit gone wrong)."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One live object on the fake platform. `attributes` is the store's own copy: callers
    get deep copies from every public method, so mutating them never changes the store."""

    kind: str
    name: str
    id: str
    attributes: Attributes
    changed_by: str | None = None


_Signature = tuple[int, int, int, int]


class FakeStore:
    """The fake platform's objects, optionally persisted to a JSON file.

    `calls` counts provider calls keyed by (operation, kind), e.g. ("create", "Queue") or
    ("list", "Queue"); providers increment it, hand edits do not.
    """

    def __init__(self) -> None:
        """An empty in-memory store (no file)."""
        self.path: Path | None = None
        self.calls: Counter[tuple[str, str]] = Counter()
        self._objects: dict[str, dict[str, StoredObject]] = {}
        self._next_id = 1
        self._signature: _Signature | None = None

    # ----------------------------------------------------------------- persistence

    @classmethod
    def open(cls, path: Path) -> FakeStore:
        """A store backed by `path`: loaded from it when the file exists, otherwise empty
        (the file is written on the first mutation). Raises FakeStoreError on a bad file."""
        store = cls()
        store.path = Path(path)
        store._refresh()
        return store

    def _stat(self) -> _Signature | None:
        assert self.path is not None
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)

    def _refresh(self) -> None:
        """Re-read the file when it changed on disk since we last read or wrote it."""
        if self.path is None:
            return
        signature = self._stat()
        if signature == self._signature:
            return
        if signature is None:
            self._objects, self._next_id = {}, 1
        else:
            self._load(self.path.read_text(encoding="utf-8"))
        self._signature = signature

    def _load(self, text: str) -> None:
        where = str(self.path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise FakeStoreError(
                f"{where} is not valid JSON ({error.msg}, line {error.lineno})",
                next_step="fix the file by hand or delete it to start from an empty fake estate",
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("objects", {}), dict):
            raise FakeStoreError(f"{where} is not a fake store file", next_step="delete it to start afresh")
        objects: dict[str, dict[str, StoredObject]] = {}
        highest = 0
        for kind, by_name in data.get("objects", {}).items():
            if not isinstance(by_name, dict):
                raise FakeStoreError(f"{where}: objects.{kind} must map names to objects")
            objects[kind] = {}
            for name, entry in by_name.items():
                if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                    raise FakeStoreError(f"{where}: objects.{kind}.{name} needs an 'id' string")
                attributes = entry.get("attributes", {})
                if not isinstance(attributes, dict):
                    raise FakeStoreError(f"{where}: objects.{kind}.{name}.attributes must be an object")
                changed_by = entry.get("changedBy")
                objects[kind][name] = StoredObject(kind, name, entry["id"], attributes, changed_by)
                highest = max(highest, _id_number(entry["id"]))
        next_id = data.get("nextId", highest + 1)
        self._objects = objects
        self._next_id = max(next_id if isinstance(next_id, int) else 1, highest + 1)

    def _dump(self) -> str:
        objects: dict[str, Any] = {
            kind: {
                name: {"id": obj.id, "attributes": obj.attributes, "changedBy": obj.changed_by}
                for name, obj in sorted(by_name.items())
            }
            for kind, by_name in sorted(self._objects.items())
            if by_name
        }
        return json.dumps({"version": FORMAT_VERSION, "nextId": self._next_id, "objects": objects}, indent=2) + "\n"

    def _write(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(self._dump())
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._signature = self._stat()

    # ----------------------------------------------------------------- reads

    def get(self, kind: str, name: str) -> StoredObject | None:
        """The object `kind`/`name`, as a deep copy, or None. Read-only."""
        self._refresh()
        found = self._objects.get(kind, {}).get(name)
        return _copied(found) if found else None

    def get_by_id(self, kind: str, object_id: str) -> StoredObject | None:
        """The object of `kind` whose platform id is `object_id` (deep copy), or None."""
        self._refresh()
        for obj in self._objects.get(kind, {}).values():
            if obj.id == object_id:
                return _copied(obj)
        return None

    def list_objects(self, kind: str) -> list[StoredObject]:
        """Every object of `kind`, sorted by name, as deep copies. Read-only; not counted."""
        self._refresh()
        return [_copied(obj) for _, obj in sorted(self._objects.get(kind, {}).items())]

    def objects(self, kind: str) -> dict[str, Attributes]:
        """Plain-data snapshot for assertions: name → attributes (deep copies) of `kind`."""
        return {obj.name: obj.attributes for obj in self.list_objects(kind)}

    def ids(self, kind: str) -> dict[str, str]:
        """Name → platform id of every object of `kind`."""
        return {obj.name: obj.id for obj in self.list_objects(kind)}

    def snapshot(self) -> dict[str, dict[str, Attributes]]:
        """Plain-data snapshot of the whole estate: kind → name → attributes (deep copies);
        kinds without objects are left out."""
        self._refresh()
        return {kind: self.objects(kind) for kind in sorted(self._objects) if self._objects[kind]}

    def count(self, kind: str | None = None) -> int:
        """How many objects of `kind` exist (all kinds when None)."""
        self._refresh()
        if kind is not None:
            return len(self._objects.get(kind, {}))
        return sum(len(by_name) for by_name in self._objects.values())

    def call_count(self, operation: str, kind: str | None = None) -> int:
        """Provider calls of `operation` ("list", "discover", "create", "update", "delete",
        "aclose") received for `kind`, or across all kinds when None."""
        if kind is not None:
            return self.calls[(operation, kind)]
        return sum(count for (op, _), count in self.calls.items() if op == operation)

    # ----------------------------------------------------------------- writes

    def put(self, kind: str, name: str, attributes: Attributes, *, changed_by: str | None = None) -> StoredObject:
        """Create or overwrite `kind`/`name` with `attributes`, as a person would in the
        platform's console (not counted as a provider call). An existing object keeps its
        id; a new one gets a fresh id. Written through to the file. Returns a copy."""
        return self.create_object(kind, name, attributes, changed_by=changed_by)

    def remove(self, kind: str, name: str) -> bool:
        """Delete `kind`/`name` by hand (not counted). True when it existed."""
        self._refresh()
        if self._objects.get(kind, {}).pop(name, None) is None:
            return False
        self._write()
        return True

    def create_object(
        self, kind: str, name: str, attributes: Attributes, *, changed_by: str | None = None
    ) -> StoredObject:
        """Create `kind`/`name`, or overwrite its attributes when it exists (idempotent by
        name: never two objects with one name). Returns a deep copy of the stored object."""
        self._refresh()
        by_name = self._objects.setdefault(kind, {})
        existing = by_name.get(name)
        if existing is not None:
            object_id = existing.id
        else:
            object_id = f"{kind.lower()}-{self._next_id:06d}"
            self._next_id += 1
        stored = StoredObject(kind, name, object_id, copy.deepcopy(attributes), changed_by)
        by_name[name] = stored
        self._write()
        return _copied(stored)

    def update_object(
        self, kind: str, object_id: str, attributes: Attributes, *, changed_by: str | None = None
    ) -> StoredObject | None:
        """Overwrite the attributes of the object with `object_id`; None (and no change)
        when no such object exists. Returns a deep copy of the stored object."""
        self._refresh()
        by_name = self._objects.get(kind, {})
        for name, obj in by_name.items():
            if obj.id == object_id:
                stored = StoredObject(kind, name, object_id, copy.deepcopy(attributes), changed_by)
                by_name[name] = stored
                self._write()
                return _copied(stored)
        return None

    def delete_object(self, kind: str, object_id: str) -> bool:
        """Delete the object with `object_id`. True when it existed; False (no change) when
        it was already gone."""
        self._refresh()
        by_name = self._objects.get(kind, {})
        for name, obj in list(by_name.items()):
            if obj.id == object_id:
                del by_name[name]
                self._write()
                return True
        return False


def _copied(obj: StoredObject) -> StoredObject:
    return StoredObject(obj.kind, obj.name, obj.id, copy.deepcopy(obj.attributes), obj.changed_by)


def _id_number(object_id: str) -> int:
    """The counter in an id like queue-000042 (0 for ids written by hand in another form)."""
    tail = object_id.rsplit("-", 1)[-1]
    return int(tail) if tail.isascii() and tail.isdigit() and len(tail) <= 18 else 0
