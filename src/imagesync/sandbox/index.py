"""Indexed resource tables: one collection's records by ARN, with the lookups the handlers need.

`core.Request.table` hands out a `Table` for each collection of `state["resources"]` (a plain
dict read from a state file is wrapped on first use). A `Table` is a dict, so everything that reads
or writes the state as a document keeps working and it serializes as one; every insert and delete
also keeps its indexes in step, so the handlers' lookups cost what they return, not the table:

- `scope(prefix)`: the records of one region and account (`arn:P:imagebuilder:R:A:`), for
  `owner=Self` lists;
- `family(base)`: every version (and build) of one name (`...:component/NAME`), for resolving an
  ARN, and `newest(base, pattern)`: the newest version matching a wildcard pattern, by bisection;
- `builds(version_arn)`: the builds of one version;
- `view(key, make)`: a derived list (a sorted, aggregated List result) computed once per change of
  the table, so paging through a List costs the page, not a sort of the table per page.

A `Table` is also `Tracked`: it remembers the keys written or read since the store last asked,
which is how the store journals a write without serializing the whole state.

Every index lists records in table order (the order a plain dict would iterate them), so results
and their tie-breaks are exactly what a scan of the table gives. Indexes are keyed by ARN alone:
handlers may change a record in place, but never its ARN, name or version.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import Any

Record = dict[str, Any]
VersionKey = tuple[int, int, int]

_ABOVE = 1 << 62  # above any version node or build number


def _semver(text: str) -> VersionKey | None:
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return (int(parts[0]), int(parts[1]), int(parts[2]))


def split_arn(arn: str) -> tuple[str, str | None, VersionKey | None, str | None, int]:
    """(scope, family base, version key, version ARN of a build, build) of a stored ARN.

    The base is the ARN up to the name, for a versioned resource (None otherwise); the version ARN
    is set only for an ARN with a build number; the build is 0 when there is none.
    """
    cut = 0
    for _ in range(5):
        cut = arn.find(":", cut) + 1
        if cut == 0:
            return arn, None, None, None, 0
    scope = arn[:cut]
    head, _, last = arn.rpartition("/")
    if last.isdigit() and head:
        stem, _, version = head.rpartition("/")
        key = _semver(version)
        if key is not None and stem:
            return scope, stem, key, head, int(last)
    key = _semver(last)
    if key is not None and head:
        return scope, head, key, None, 0
    return scope, None, None, None, 0


class _Family:
    """One name's records in table order, and (lazily) the same sorted by version and build."""

    __slots__ = ("records", "_sorted")

    def __init__(self) -> None:
        self.records: dict[str, int] = {}  # arn -> insertion sequence
        self._sorted: list[tuple[VersionKey, int, int, str]] | None = None

    def add(self, arn: str, seq: int) -> None:
        self.records[arn] = seq
        self._sorted = None

    def drop(self, arn: str) -> None:
        del self.records[arn]
        self._sorted = None

    def ordered(self) -> list[tuple[VersionKey, int, int, str]]:
        if self._sorted is None:
            rows = []
            for arn, seq in self.records.items():
                _, _, key, _, build = split_arn(arn)
                assert key is not None  # only versioned ARNs join a family
                # Among equal (version, build), the record first in table order is the newest,
                # as max() over the table would pick it: it sorts last.
                rows.append((key, build, -seq, arn))
            rows.sort()
            self._sorted = rows
        return self._sorted


class Tracked(dict[str, Any]):
    """A dict that remembers which keys were written or read since `touched` was last cleared.

    The store journals what a transaction may have changed: a key written, deleted, or read (a
    record read may be changed in place by its reader), so it never serializes the whole state.
    """

    _MISSING: Any = object()

    def __init__(self, items: Iterable[tuple[str, Any]] | dict[str, Any] = ()) -> None:
        super().__init__()
        self.touched: set[str] = set()
        self.digests: dict[str, bytes] = {}
        """Digest of each key's value as last journaled or loaded (kept by the store)."""
        pairs = items.items() if isinstance(items, dict) else items
        for key, value in pairs:
            self[key] = value
        self.touched.clear()

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        self.touched.add(key)
        return value

    def get(self, key: str, default: Any = None) -> Any:
        if key in self:
            self.touched.add(key)
            return super().__getitem__(key)
        return default

    def __setitem__(self, key: str, value: Any) -> None:
        self.touched.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.touched.add(key)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if key in self:
            value = super().pop(key)
            self.touched.add(key)
            return value
        if default is Tracked._MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def popitem(self) -> tuple[str, Any]:
        key, value = super().popitem()
        self.touched.add(key)
        return key, value

    def clear(self) -> None:
        self.touched.update(self.keys())
        super().clear()

    def values(self) -> Any:
        self.touched.update(self.keys())
        return super().values()

    def items(self) -> Any:
        self.touched.update(self.keys())
        return super().items()

    def __ior__(self, other: Any) -> Tracked:  # type: ignore[override, misc]
        self.update(other)
        return self

    def __reduce__(self) -> Any:
        # Copies and pickles are plain dicts: a copy of the state is not the state.
        return (dict, (dict(self),))


class Table(Tracked):
    """A collection's records by ARN, indexed by scope, family and version."""

    def __init__(self, items: Iterable[tuple[str, Record]] | dict[str, Record] = ()) -> None:
        self._seq = 0
        self._scopes: dict[str, dict[str, None]] = {}
        self._families: dict[str, _Family] = {}
        self._versions: dict[str, dict[str, None]] = {}
        self._views: dict[Any, list[Any]] = {}
        super().__init__(items)

    # --- keeping the indexes in step --------------------------------------------------------

    def __setitem__(self, arn: str, record: Record) -> None:
        if arn not in self:
            self._index(arn)
        self._views.clear()
        super().__setitem__(arn, record)

    def __delitem__(self, arn: str) -> None:
        super().__delitem__(arn)
        self._unindex(arn)

    def pop(self, arn: str, default: Any = Tracked._MISSING) -> Any:
        if arn in self:
            record = super().pop(arn)
            self._unindex(arn)
            return record
        if default is Tracked._MISSING:
            raise KeyError(arn)
        return default

    def popitem(self) -> tuple[str, Record]:
        arn, record = super().popitem()
        self._unindex(arn)
        return arn, record

    def clear(self) -> None:
        super().clear()
        self._seq = 0
        self._scopes.clear()
        self._families.clear()
        self._versions.clear()
        self._views.clear()

    def _index(self, arn: str) -> None:
        self._seq += 1
        scope, base, _, version_arn, _ = split_arn(arn)
        self._scopes.setdefault(scope, {})[arn] = None
        if base is not None:
            self._families.setdefault(base, _Family()).add(arn, self._seq)
        if version_arn is not None:
            self._versions.setdefault(version_arn, {})[arn] = None

    def _unindex(self, arn: str) -> None:
        self._views.clear()
        scope, base, _, version_arn, _ = split_arn(arn)
        _drop(self._scopes, scope, arn)
        if version_arn is not None:
            _drop(self._versions, version_arn, arn)
        if base is not None:
            family = self._families[base]
            family.drop(arn)
            if not family.records:
                del self._families[base]

    # --- lookups ------------------------------------------------------------------------------

    def scope(self, prefix: str) -> list[Record]:
        """The records whose ARN starts with `prefix`, which ends after the account (`...:ACCOUNT:`)."""
        return [self[arn] for arn in self._scopes.get(prefix, ())]

    def family(self, base: str) -> list[Record]:
        """The records whose ARN starts with `base` + '/', where `base` ends with the name."""
        family = self._families.get(base)
        return [self[arn] for arn in family.records] if family is not None else []

    def builds(self, version_arn: str) -> list[Record]:
        """The records whose ARN is `version_arn` + '/' + a build number."""
        return [self[arn] for arn in self._versions.get(version_arn, ())]

    def newest(self, base: str, pattern: list[int | None]) -> Record | None:
        """The newest record of `base` whose version matches `pattern` (numbers, then wildcards):
        highest version, then highest build, then first in table order."""
        family = self._families.get(base)
        if family is None:
            return None
        rows = family.ordered()
        upper = tuple(_ABOVE if node is None else node for node in pattern)
        at = bisect.bisect_right(rows, (upper, _ABOVE))
        if at == 0:
            return None
        key, _, _, arn = rows[at - 1]
        if any(node is not None and node != have for node, have in zip(pattern, key, strict=True)):
            return None
        return self[arn]

    def view(self, key: Any, make: Callable[[], list[Any]]) -> list[Any]:
        """`make()`, computed once until the table next changes (by insert, replace or delete)."""
        rows = self._views.get(key)
        if rows is None:
            rows = self._views[key] = make()
        return rows


def _drop(index: dict[str, dict[str, None]], key: str, arn: str) -> None:
    members = index[key]
    del members[arn]
    if not members:
        del index[key]
