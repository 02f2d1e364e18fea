"""An insertion-ordered set of ids that pages cheaply from a cursor.

Okta's cursors name the last item returned. Positions are kept for removed ids too, so a
cursor stays valid when the item it names is removed between two pages (as Okta's do)."""

from __future__ import annotations

from collections.abc import Callable, Iterator


class OrderedIds:
    __slots__ = ("_keys", "_pos", "_dead", "_count")

    def __init__(self, ids: list[str] | None = None):
        self._keys: list[str | None] = list(ids or ())
        self._pos: dict[str, int] = {k: i for i, k in enumerate(self._keys)}
        self._dead: dict[str, int] = {}
        self._count = len(self._pos)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key: object) -> bool:
        return key in self._pos

    def __iter__(self) -> Iterator[str]:
        for k in self._keys:
            if k is not None:
                yield k

    def add(self, key: str) -> bool:
        if key in self._pos:
            return False
        self._pos[key] = len(self._keys)
        self._keys.append(key)
        self._dead.pop(key, None)
        self._count += 1
        return True

    def remove(self, key: str) -> bool:
        i = self._pos.pop(key, None)
        if i is None:
            return False
        self._keys[i] = None
        self._dead[key] = i
        self._count -= 1
        return True

    def pick(self, rng, ok: Callable[[str], bool], tries: int = 40) -> str | None:
        """A random id passing `ok` (a few cheap draws, then a scan of all), or None."""
        if self._keys:
            for _ in range(tries):
                k = self._keys[rng.randrange(len(self._keys))]
                if k is not None and ok(k):
                    return k
        found = [k for k in self if ok(k)]
        return rng.choice(found) if found else None

    def start_after(self, cursor: str | None) -> int | None:
        """Index to resume from after `cursor`; None when the cursor names no id ever held."""
        if cursor is None:
            return 0
        i = self._pos.get(cursor)
        if i is None:
            i = self._dead.get(cursor)
        return None if i is None else i + 1

    def page(self, start: int, limit: int, keep: Callable[[str], bool] | None = None
             ) -> tuple[list[str], bool]:
        """Up to `limit` ids from index `start` that pass `keep`, and whether more follow."""
        out: list[str] = []
        keys = self._keys
        n = len(keys)
        i = start
        if keep is None:
            while i < n:
                k = keys[i]
                i += 1
                if k is None:
                    continue
                if len(out) == limit:
                    return out, True
                out.append(k)
            return out, False
        while i < n:
            k = keys[i]
            i += 1
            if k is None or not keep(k):
                continue
            if len(out) == limit:
                return out, True
            out.append(k)
        return out, False
