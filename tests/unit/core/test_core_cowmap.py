"""CowMap: updates return new maps and never touch the ones they came from."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from partyquiz_core.cowmap import CowMap


def test_set_and_remove_leave_the_original_alone() -> None:
    first: CowMap[str, int] = CowMap({"a": 1})
    second = first.set("b", 2)
    third = second.set("a", 10).remove("b")
    assert dict(first.items()) == {"a": 1}
    assert dict(second.items()) == {"a": 1, "b": 2}
    assert dict(third.items()) == {"a": 10}
    assert (len(first), len(second), len(third)) == (1, 2, 1)
    with pytest.raises(KeyError):
        first.remove("zzz")


def test_it_reads_like_a_dict() -> None:
    m: CowMap[str, int] = CowMap([("x", 1), ("y", 2)])
    assert m["x"] == 1
    assert m.get("z") is None
    assert m.get("z", 5) == 5
    assert "y" in m
    assert "z" not in m
    assert sorted(m) == ["x", "y"]
    assert sorted(m.values()) == [1, 2]
    assert m == {"x": 1, "y": 2}
    assert m != {"x": 1}
    assert repr(CowMap({"k": 1})) == "CowMap({'k': 1})"


class Holder(BaseModel):
    scores: CowMap[str, int]


def test_pydantic_validates_and_serialises_it_as_a_plain_object() -> None:
    holder = Holder(scores={"a": "3"})  # type: ignore[arg-type]
    assert isinstance(holder.scores, CowMap)
    assert holder.scores["a"] == 3
    assert holder.model_dump_json() == '{"scores":{"a":3}}'
    assert Holder.model_validate_json(holder.model_dump_json()) == holder
    assert Holder(scores=holder.scores).scores is holder.scores


@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(0, 400), st.integers()),
        max_size=300,
    )
)
def test_it_behaves_like_a_dict_under_any_updates(ops: list[tuple[bool, int, int]]) -> None:
    model: dict[int, int] = {}
    current: CowMap[int, int] = CowMap()
    history = [(current, dict(model))]
    for is_set, key, value in ops:
        if is_set:
            model[key] = value
            current = current.set(key, value)
        elif key in model:
            del model[key]
            current = current.remove(key)
        history.append((current, dict(model)))
    for snapshot, expected in history:  # every older version is still intact
        assert snapshot == expected
        assert len(snapshot) == len(expected)
        assert dict(snapshot.items()) == expected
        assert snapshot.to_dict() == expected


@given(st.dictionaries(st.text(max_size=4), st.integers(), max_size=400))
def test_with_values_pairs_the_keys_in_iteration_order(items: dict[str, int]) -> None:
    m = CowMap(items)
    doubled = m.with_values([2 * v for v in m.values()])
    assert doubled == {k: 2 * v for k, v in items.items()}
    assert doubled == CowMap(zip(m, [2 * v for v in m.values()], strict=True))
    assert doubled.set("new", 1).remove("new") == doubled  # an ordinary map from here on
    assert m == items  # untouched


def test_with_values_wants_one_value_per_key() -> None:
    m = CowMap({"a": 1, "b": 2})
    with pytest.raises(ValueError, match="1 values for 2 keys"):
        m.with_values([1])


@given(
    st.dictionaries(st.integers(0, 600), st.integers(), max_size=300),
    st.lists(st.tuples(st.integers(0, 600), st.integers()), max_size=300),
)
def test_many_keys_set_at_once_equal_one_set_each_and_leave_the_original_alone(
    items: dict[int, int], pairs: list[tuple[int, int]]
) -> None:
    original: CowMap[int, int] = CowMap(items)
    one_each = original
    for key, value in pairs:
        one_each = one_each.set(key, value)
    together = original.update(pairs)
    assert dict(together.items()) == dict(one_each.items()) == {**items, **dict(pairs)}
    assert len(together) == len(one_each)
    assert together == one_each
    assert dict(original.items()) == items
    assert len(original) == len(items)
