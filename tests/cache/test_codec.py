"""The value codec and the key canonicaliser, as properties."""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import math
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlaopt.cache._codec import (
    DecodeError,
    EncodeError,
    UnkeyableError,
    canonical,
    class_id,
    decode,
    digest,
    dumps,
    encode,
    loads,
)

fixed_zones = st.builds(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes)),
                        st.integers(-23 * 60, 23 * 60))
zones = st.one_of(st.none(), st.timezones(), fixed_zones, st.just(dt.timezone.utc))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.datetimes(timezones=zones, allow_imaginary=False),
    st.dates(), st.times(timezones=st.one_of(st.none(), fixed_zones)), st.timedeltas(),
    st.uuids(), st.binary(), st.binary().map(bytearray), st.ip_addresses(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.dictionaries(st.integers(), inner, max_size=3),
        st.frozensets(st.integers() | st.text(max_size=4), max_size=4),
    ),
    max_leaves=12,
)


def identical(first: Any, second: Any) -> bool:
    """Same type, same value, all the way down (NaN equal to NaN, -0.0 not equal to 0.0)."""
    if type(first) is not type(second):
        return False
    if isinstance(first, float):
        return repr(first) == repr(second)
    if isinstance(first, Decimal):
        return first.as_tuple() == second.as_tuple() and str(first) == str(second)
    if isinstance(first, (dt.datetime, dt.time)):
        return (first == second and first.tzinfo == second.tzinfo and first.fold == second.fold
                and repr(first) == repr(second))
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(map(identical, first, second))
    if isinstance(first, dict):
        return list(first) == list(second) and all(identical(first[k], second[k]) for k in first)
    return bool(first == second)


def round_trip(value: Any, classes: dict[str, type] | None = None) -> Any:
    return decode(loads(dumps(encode(value, classes or {}))), classes or {})


@given(values)
def test_values_come_back_identical(value: Any) -> None:
    assert identical(round_trip(value), value)


@given(st.datetimes(timezones=st.timezones(), allow_imaginary=False))
def test_zone_names_survive(value: dt.datetime) -> None:
    back = round_trip(value)
    assert back.tzinfo == value.tzinfo and back.utcoffset() == value.utcoffset()


def test_the_types_the_issue_names() -> None:
    value = {
        "revenue": Decimal("1234.50"), "at": dt.datetime(2025, 3, 30, 1, 30,
                                                         tzinfo=dt.timezone.utc),
        "day": dt.date(2025, 2, 28), "id": UUID(int=7), "blob": b"\x00\xff",
        "json": {"a": [1, 2.5, None, "x", {"b": True}]}, "ip": ipaddress.ip_address("::1"),
        "nan": math.nan,
    }
    assert identical(round_trip(value), value)


class Opaque:
    pass


@pytest.mark.parametrize("value", [Opaque(), object(), [1, Opaque()], {1: {2: Opaque()}},
                                   dt.datetime(2025, 1, 1, tzinfo=dt.tzinfo.__new__(
                                       type("Zone", (dt.tzinfo,), {})))])
def test_what_cannot_come_back_exactly_is_refused(value: Any) -> None:
    with pytest.raises(EncodeError):
        encode(value)


@dataclasses.dataclass(frozen=True)
class Point:
    x: Decimal
    y: int = dataclasses.field(default=0, kw_only=True)


def test_dataclasses_only_when_allowed() -> None:
    allowed = {class_id(Point): Point}
    assert round_trip(Point(Decimal("1.5"), y=2), allowed) == Point(Decimal("1.5"), y=2)
    with pytest.raises(EncodeError):
        encode(Point(Decimal(1)))


@pytest.mark.parametrize("payload", [
    '["dc", "subprocess:Popen", {"args": ["touch", "/tmp/pwned"]}]',
    '["nt", "os:system", ["true"]]',
    '["en", "builtins:eval", "1"]',
    '["?", 1]',
    '["D", "not a number"]',
    '["f", "1e400"]',
    '["b", "!!!"]',
    '["z"]',
])
def test_stored_data_never_chooses_code_to_run(payload: str) -> None:
    with pytest.raises(DecodeError):
        decode(loads(payload.encode()), {class_id(Point): Point})


def test_garbage_bytes_are_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        loads(b"\x80\x04pickle")


def no_handles(value: object) -> None:
    return None


@given(st.dictionaries(st.text(max_size=4), st.integers(), max_size=6), st.randoms())
def test_keys_do_not_depend_on_order(mapping: dict[str, int], random: Any) -> None:
    items = list(mapping.items())
    random.shuffle(items)
    assert digest([canonical(mapping, "a", no_handles)]) == digest(
        [canonical(dict(items), "a", no_handles)])
    assert canonical(set(mapping), "a", no_handles) == canonical(
        {k for k, _ in items}, "a", no_handles)


def test_keys_tell_apart_values_that_compare_equal() -> None:
    forms = [canonical(v, "a", no_handles) for v in (1, 1.0, True, Decimal("1"), "1")]
    assert len({dumps(f) for f in forms}) == 5


def test_unkeyable_arguments_say_where() -> None:
    with pytest.raises(UnkeyableError) as raised:
        canonical({"window": [1, Opaque()]}, "report", no_handles)
    assert raised.value.path == "report['window'][1]"
