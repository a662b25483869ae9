"""A copy-on-write mapping, so a new game state can share everything a command did not touch.

``CowMap`` reads like a read-only ``dict``; ``set``/``remove`` return a new map that shares every
bucket but the one that changed, so one answer among 10 000 players copies ~1/128 of the map,
not all of it. It is JSON-shaped for pydantic (a plain object). Never mutate one in place.
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from typing import Any, Generic, TypeVar, get_args

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

K = TypeVar("K")
V = TypeVar("V")
W = TypeVar("W")

_BUCKETS = 128
_MASK = _BUCKETS - 1
_EMPTY: dict[Any, Any] = {}


class CowMap(Mapping[K, V], Generic[K, V]):
    """An immutable hash map with cheap single-key updates (copies one bucket of ~n/128)."""

    __slots__ = ("_buckets", "_len")

    _buckets: tuple[dict[K, V], ...]
    _len: int

    def __init__(self, items: Mapping[K, V] | Iterable[tuple[K, V]] = ()) -> None:
        buckets: list[dict[K, V]] = [{} for _ in range(_BUCKETS)]
        pairs = items.items() if isinstance(items, Mapping) else items
        for key, value in pairs:
            buckets[hash(key) & _MASK][key] = value
        self._buckets = tuple(b if b else _EMPTY for b in buckets)
        self._len = sum(len(b) for b in buckets)

    @classmethod
    def _from(cls, buckets: tuple[dict[K, V], ...], length: int) -> CowMap[K, V]:
        new: CowMap[K, V] = cls.__new__(cls)
        new._buckets = buckets
        new._len = length
        return new

    def __getitem__(self, key: K) -> V:
        return self._buckets[hash(key) & _MASK][key]

    def __contains__(self, key: object) -> bool:
        return key in self._buckets[hash(key) & _MASK]

    def get(self, key: K, default: Any = None) -> Any:
        return self._buckets[hash(key) & _MASK].get(key, default)

    def __iter__(self) -> Iterator[K]:
        for bucket in self._buckets:
            yield from bucket

    def __len__(self) -> int:
        return self._len

    def values(self) -> ValuesView[V]:
        return _Values(self)

    def items(self) -> ItemsView[K, V]:
        return _Items(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CowMap):
            return self._len == other._len and self._buckets == other._buckets
        if isinstance(other, Mapping):
            return self._len == len(other) and all(
                k in other and other[k] == v for k, v in self.items()
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CowMap({dict(self.items())!r})"

    def set(self, key: K, value: V) -> CowMap[K, V]:
        """Return a map with ``key`` bound to ``value``; this map is unchanged."""
        i = hash(key) & _MASK
        old = self._buckets[i]
        bucket = dict(old)
        bucket[key] = value
        buckets = list(self._buckets)
        buckets[i] = bucket
        return self._from(tuple(buckets), self._len + (0 if key in old else 1))

    def update(self, pairs: Iterable[tuple[K, V]]) -> CowMap[K, V]:
        """Return a map with every ``(key, value)`` of ``pairs`` bound (later pairs win); this
        map is unchanged. Each bucket the pairs touch is copied once, however many of them
        land in it: many keys set at once cost less than a ``set`` each."""
        buckets = list(self._buckets)
        copied: dict[int, dict[K, V]] = {}
        length = self._len
        for key, value in pairs:
            i = hash(key) & _MASK
            bucket = copied.get(i)
            if bucket is None:
                bucket = copied[i] = dict(buckets[i])
                buckets[i] = bucket
            if key not in bucket:
                length += 1
            bucket[key] = value
        if not copied:
            return self
        return self._from(tuple(buckets), length)

    def remove(self, key: K) -> CowMap[K, V]:
        """Return a map without ``key`` (KeyError if absent); this map is unchanged."""
        i = hash(key) & _MASK
        bucket = dict(self._buckets[i])
        del bucket[key]
        buckets = list(self._buckets)
        buckets[i] = bucket if bucket else _EMPTY
        return self._from(tuple(buckets), self._len - 1)

    def with_values(self, values: Sequence[W]) -> CowMap[K, W]:
        """Return a map of this map's keys to ``values``, given in this map's iteration order:
        ``CowMap(zip(self, values))`` without hashing and placing every key again."""
        if len(values) != self._len:
            raise ValueError(f"{len(values)} values for {self._len} keys")
        buckets: list[dict[K, W]] = []
        start = 0
        for bucket in self._buckets:
            end = start + len(bucket)
            buckets.append(dict(zip(bucket, values[start:end], strict=True)) if bucket else _EMPTY)
            start = end
        return CowMap._from(tuple(buckets), self._len)

    def to_dict(self) -> dict[K, V]:
        out: dict[K, V] = {}
        for bucket in self._buckets:
            out.update(bucket)
        return out

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        args = get_args(source)
        key_type, value_type = args if len(args) == 2 else (Any, Any)
        dict_schema = handler.generate_schema(dict[key_type, value_type])  # type: ignore[valid-type]

        def from_dict(value: dict[Any, Any]) -> CowMap[Any, Any]:
            return cls(value)

        from_json = core_schema.no_info_after_validator_function(from_dict, dict_schema)
        return core_schema.json_or_python_schema(
            json_schema=from_json,
            python_schema=core_schema.union_schema(
                [core_schema.is_instance_schema(cls), from_json]
            ),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda m: m.to_dict(),
                return_schema=dict_schema,
            ),
        )


class _Values(ValuesView[V]):
    _mapping: CowMap[Any, V]

    def __iter__(self) -> Iterator[V]:
        for bucket in self._mapping._buckets:
            yield from bucket.values()


class _Items(ItemsView[K, V]):
    _mapping: CowMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        for bucket in self._mapping._buckets:
            yield from bucket.items()
