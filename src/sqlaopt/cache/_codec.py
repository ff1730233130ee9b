"""Values to bytes and back, exactly and safely; arguments to stable keys.

Cached values travel as JSON with type tags: natives (None, bool, int, str, finite float) as
themselves, everything else as ``[tag, payload]``. Decoding only ever calls the constructors
of the value types listed here (``Decimal``, ``datetime``, ``UUID``, ``ZoneInfo``...) and of
the dataclasses and named tuples the caller allows by name: data read from a shared Redis can
never choose code to run, unlike ``pickle``. Anything else is refused when encoding, so a
value that cannot come back exactly is never stored.

Keys are SHA-256 digests of a canonical JSON form (sorted dicts and sets, ``repr`` floats):
the same in every process and Python version, unlike ``hash()``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import ipaddress
import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

__all__ = [
    "DecodeError",
    "EncodeError",
    "UnkeyableError",
    "canonical",
    "class_id",
    "decode",
    "digest",
    "dumps",
    "encode",
    "loads",
]

Classes = Mapping[str, type]
"""Dataclasses, named tuples and enums a value may contain, by :func:`class_id`."""

_NO_CLASSES: Classes = {}


class EncodeError(Exception):
    """The value holds something that cannot be stored exactly."""


class DecodeError(Exception):
    """Stored bytes that do not decode (corrupt, foreign or from another format version)."""


class UnkeyableError(Exception):
    """An argument that cannot be part of a key; ``path`` says where inside it."""

    def __init__(self, value: object, path: str) -> None:
        super().__init__(path)
        self.value = value
        self.path = path


def class_id(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


# ---------------------------------------------------------------------------------- values


def _tz(value: dt.tzinfo | None) -> Any:
    if value is None:
        return None
    if type(value) is ZoneInfo:
        return ["z", value.key]
    if type(value) is dt.timezone:
        offset = value.utcoffset(None)
        name = value.tzname(None)
        return ["o", offset.days * 86400 + offset.seconds, offset.microseconds,
                None if name == dt.timezone(offset).tzname(None) else name]
    raise EncodeError(f"time zone {value!r} ({type(value).__name__})")


def _from_tz(data: Any) -> dt.tzinfo | None:
    if data is None:
        return None
    if data[0] == "z":
        return ZoneInfo(data[1])
    offset = dt.timedelta(seconds=data[1], microseconds=data[2])
    return dt.timezone(offset) if data[3] is None else dt.timezone(offset, data[3])


def _b64(value: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(value).decode("ascii")


_NATIVE = (str, int, bool, type(None))
_IP_TYPES: dict[type, str] = {
    ipaddress.IPv4Address: "ip4", ipaddress.IPv6Address: "ip6",
    ipaddress.IPv4Interface: "if4", ipaddress.IPv6Interface: "if6",
    ipaddress.IPv4Network: "nw4", ipaddress.IPv6Network: "nw6",
}


def _encode_scalar(value: Any, kind: type) -> Any:
    if kind is Decimal:
        return ["D", str(value)]
    if kind is dt.datetime:
        return ["dt", value.replace(tzinfo=None, fold=0).isoformat(), _tz(value.tzinfo),
                value.fold]
    if kind is dt.date:
        return ["d", value.isoformat()]
    if kind is dt.time:
        return ["t", value.replace(tzinfo=None, fold=0).isoformat(), _tz(value.tzinfo),
                value.fold]
    if kind is dt.timedelta:
        return ["td", value.days, value.seconds, value.microseconds]
    if kind is UUID:
        return ["u", value.hex]
    if kind is bytes:
        return ["b", _b64(value)]
    if kind is bytearray:
        return ["ba", _b64(value)]
    if kind is memoryview:
        return ["mv", _b64(value)]
    if kind is float:
        return ["f", repr(value)]  # only non-finite floats get here
    tag = _IP_TYPES.get(kind)
    if tag is not None:
        return [tag, str(value)]
    raise EncodeError(f"{kind.__module__}.{kind.__qualname__}")


def encode(value: Any, classes: Classes = _NO_CLASSES) -> Any:
    """``value`` as JSON-ready data; raises :class:`EncodeError` for anything not exact."""
    kind = type(value)
    if kind in _NATIVE or (kind is float and math.isfinite(value)):
        return value
    if kind is tuple:
        return ["T", [encode(item, classes) for item in value]]
    if kind is list:
        return ["l", [encode(item, classes) for item in value]]
    if kind is dict:
        if all(type(key) is str for key in value):
            return ["m", {key: encode(item, classes) for key, item in value.items()}]
        return ["M", [[encode(k, classes), encode(v, classes)] for k, v in value.items()]]
    if kind is set or kind is frozenset:
        return ["s" if kind is set else "fs", [encode(item, classes) for item in value]]
    name = class_id(kind)
    if classes.get(name) is kind:
        return _encode_instance(value, kind, name, classes)
    return _encode_scalar(value, kind)


def _encode_instance(value: Any, kind: type, name: str, classes: Classes) -> Any:
    if isinstance(value, enum.Enum):
        return ["en", name, encode(value.value, classes)]
    if dataclasses.is_dataclass(value):
        fields = {f.name: encode(getattr(value, f.name), classes)
                  for f in dataclasses.fields(value) if f.init}
        return ["dc", name, fields]
    return ["nt", name, [encode(item, classes) for item in value]]  # a named tuple


def _items(data: Any, classes: Classes) -> list[Any]:
    return [decode(item, classes) for item in data]


def _address(kind: type) -> Callable[[list[Any], Classes], Any]:
    return lambda d, c: kind(d[1])


_DECODERS: dict[str, Callable[[list[Any], Classes], Any]] = {
    "T": lambda d, c: tuple(_items(d[1], c)),
    "l": lambda d, c: _items(d[1], c),
    "m": lambda d, c: {key: decode(item, c) for key, item in d[1].items()},
    "M": lambda d, c: {decode(k, c): decode(v, c) for k, v in d[1]},
    "s": lambda d, c: set(_items(d[1], c)),
    "fs": lambda d, c: frozenset(_items(d[1], c)),
    "D": lambda d, c: Decimal(d[1]),
    "dt": lambda d, c: dt.datetime.fromisoformat(d[1]).replace(tzinfo=_from_tz(d[2]), fold=d[3]),
    "d": lambda d, c: dt.date.fromisoformat(d[1]),
    "t": lambda d, c: dt.time.fromisoformat(d[1]).replace(tzinfo=_from_tz(d[2]), fold=d[3]),
    "td": lambda d, c: dt.timedelta(days=d[1], seconds=d[2], microseconds=d[3]),
    "u": lambda d, c: UUID(hex=d[1]),
    "b": lambda d, c: base64.b64decode(d[1], validate=True),
    "ba": lambda d, c: bytearray(base64.b64decode(d[1], validate=True)),
    "mv": lambda d, c: memoryview(base64.b64decode(d[1], validate=True)),
    "f": lambda d, c: float(d[1]) if d[1] in ("nan", "inf", "-inf") else _bad(d),
    "en": lambda d, c: _allowed(d[1], c)(decode(d[2], c)),
    "dc": lambda d, c: _allowed(d[1], c)(**{k: decode(v, c) for k, v in d[2].items()}),
    "nt": lambda d, c: _allowed(d[1], c)(*_items(d[2], c)),
    **{tag: _address(kind) for kind, tag in _IP_TYPES.items()},
}


def _bad(data: Any) -> Any:
    raise DecodeError(f"unexpected value {data!r}")


def _allowed(name: str, classes: Classes) -> type:
    kind = classes.get(name)
    if kind is None:
        raise DecodeError(f"class {name!r} is not allowed here")
    return kind


def decode(data: Any, classes: Classes = _NO_CLASSES) -> Any:
    """The value :func:`encode` turned into ``data``."""
    if type(data) is not list:
        return data
    try:
        return _DECODERS[data[0]](data, classes)
    except DecodeError:
        raise
    except Exception as error:  # malformed payloads of every kind end up here
        raise DecodeError(f"cannot decode {str(data)[:80]}: {error}") from error


def dumps(data: Any) -> bytes:
    """JSON-ready data as compact UTF-8 bytes."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()


def loads(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise DecodeError(f"not a cache entry: {error}") from error


# ------------------------------------------------------------------------------------ keys


def canonical(value: Any, path: str, identity: Callable[[Any], str | None]) -> Any:
    """``value`` in a canonical JSON-ready form for keys (same value, same form, anywhere).

    ``identity`` turns database handles (Session, Connection, Engine) into their database's
    identity, or returns None for anything else. Raises :class:`UnkeyableError`.
    """
    kind = type(value)
    if kind in _NATIVE:
        return value
    if kind is float:
        return ["f", repr(value)]
    if kind is tuple or kind is list:
        return ["T" if kind is tuple else "l",
                [canonical(item, f"{path}[{i}]", identity) for i, item in enumerate(value)]]
    if kind is dict:
        pairs = [[canonical(k, f"{path} key", identity), canonical(v, f"{path}[{k!r}]", identity)]
                 for k, v in value.items()]
        return ["M", sorted(pairs, key=_sort_key)]
    if kind is set or kind is frozenset:
        items = [canonical(item, f"{path} item", identity) for item in value]
        return ["s", sorted(items, key=_sort_key)]
    if isinstance(value, enum.Enum):
        return ["en", class_id(kind), canonical(value.value, path, identity)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ["dc", class_id(kind), {f.name: canonical(getattr(value, f.name),
                                                         f"{path}.{f.name}", identity)
                                       for f in dataclasses.fields(value)}]
    if isinstance(value, tuple) and hasattr(kind, "_fields"):
        return ["nt", class_id(kind), [canonical(item, f"{path}.{field}", identity)
                                       for field, item in zip(kind._fields, value, strict=True)]]
    database = identity(value)
    if database is not None:
        return ["db", database]
    try:
        return _encode_scalar(value, kind)
    except EncodeError:
        raise UnkeyableError(value, path) from None


def _sort_key(item: Any) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def digest(parts: list[Any]) -> str:
    """A stable hex digest of JSON-ready ``parts``."""
    return hashlib.sha256(dumps(parts)).hexdigest()
