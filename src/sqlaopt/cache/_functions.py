"""``@cached``: a service function's result, invalidated by the tables it read.

While a missing entry is computed, every statement the function runs (cached or not) adds the
versions of the tables it reads, taken before it runs, to a :class:`Recording` in a
ContextVar; the result is stored under those versions, unless something made it unsafe
(a write, an uncommitted write to a table it reads, an old snapshot, unknown tables). A hit
is served when every recorded version is still current and no transaction of this thread or
task has uncommitted writes to those tables.

One plan, written once as a generator, runs under a sync and an async driver.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import inspect
import typing
from collections.abc import Awaitable, Callable, Generator, Iterable, Iterator
from typing import Any, TypeVar, cast

from .._names import did_you_mean
from . import _flights
from ._codec import (
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
from ._errors import CacheError, CacheKeyError
from ._identity import of_handle
from ._state import Recording, bypassing, count, logger, recordings
from ._statements import FORMAT, MAX_ENTRY_BYTES, check_namespace, check_ttl
from ._store import FAILED, Store, current
from ._tables import ALL
from ._transactions import lane_pending

__all__ = ["cached"]

F = TypeVar("F", bound=Callable[..., Any])
_MISS: Any = object()
Plan = Generator[tuple[Any, ...], Any, Any]

_KEYABLE = ("None, bool, int, float, str, bytes, Decimal, date, time, datetime, timedelta, "
            "UUID, IP addresses, enums, and tuples, lists, dicts, sets, dataclasses and named "
            "tuples of these; a Session, Connection or Engine counts as its database")


def cached(ttl: float, *, namespace: str | None = None,
           ignore: Iterable[str] = ()) -> Callable[[F], F]:
    """Cache a function's result for ``ttl`` seconds, invalidated by the tables it reads.

    Works on sync and ``async def`` functions. The key is the function's qualified name and
    its arguments (bound to its signature, so ``f(1)`` and ``f(x=1)`` agree), minus those
    named in ``ignore`` (``"self"`` for a service method). ``namespace`` keeps the entries
    apart from other namespaces (a tenant, or a new version of the function's result).

    Results may hold the values :mod:`sqlaopt.cache` stores exactly (numbers, strings,
    Decimal, dates and times with their zones, UUID, bytes, lists, tuples, dicts, sets) and
    the dataclasses, named tuples and enums named in the function's return annotation.
    Anything else is returned uncached, with one warning.
    """
    seconds = check_ttl(ttl, "cached(ttl)")
    if seconds is None:
        raise CacheError(f"cached(ttl) must be a positive number of seconds, not {ttl!r}")
    entries = check_namespace(namespace, "cached(namespace)")
    if isinstance(ignore, str):
        ignore = (ignore,)
    ignored = frozenset(ignore)

    def decorate(func: F) -> F:
        spec = _Function(func, seconds, entries, ignored)
        if inspect.iscoroutinefunction(func):
            async def call_async(*args: Any, **kwargs: Any) -> Any:
                return await spec.call_async(args, kwargs)
            return cast(F, functools.wraps(func)(call_async))

        def call(*args: Any, **kwargs: Any) -> Any:
            return spec.call(args, kwargs)
        return cast(F, functools.wraps(func)(call))

    return decorate


class _Function:
    """A decorated function: its key, its allowed result classes and its cache plan."""

    def __init__(self, func: Callable[..., Any], ttl: float, namespace: str,
                 ignored: frozenset[str]) -> None:
        self.func, self.ttl, self.namespace = func, ttl, namespace
        self.name = f"{func.__module__}:{func.__qualname__}"
        self.signature = inspect.signature(func)
        unknown = sorted(ignored - set(self.signature.parameters))
        if unknown:
            raise CacheError(
                f"cached(ignore=...) names {unknown[0]!r}, which is not a parameter of "
                f"{func.__qualname__}{did_you_mean(unknown[0], self.signature.parameters)}; "
                f"its parameters: {', '.join(self.signature.parameters) or 'none'}")
        self.ignored = ignored
        self._classes: dict[str, type] | None = None
        self._warned: set[str] = set()

    # --------------------------------------------------------------------------- drivers

    def call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        store = current()
        key = self._key(store, args, kwargs)
        if store is None or key is None:
            return self.func(*args, **kwargs)
        steps = _Steps(self._plan(store, key))
        while (step := steps.next()) is not None:
            if step[0] == "read":
                steps.reply = store.read(step[1], step[2], False)
            elif step[0] == "write":
                steps.reply = store.write(step[1], step[2], self.ttl, False)
            elif step[0] == "wait":
                step[1].wait(False)
            else:
                with steps.calling(step[1]):
                    steps.reply = self.func(*args, **kwargs)
        return steps.value

    async def call_async(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        store = current()
        key = self._key(store, args, kwargs)
        if store is None or key is None:
            return await cast(Awaitable[Any], self.func(*args, **kwargs))
        steps = _Steps(self._plan(store, key))
        while (step := steps.next()) is not None:
            if step[0] == "read":
                steps.reply = await store.aread(step[1], step[2])
            elif step[0] == "write":
                steps.reply = await store.awrite(step[1], step[2], self.ttl)
            elif step[0] == "wait":
                await step[1].await_done()
            else:
                with steps.calling(step[1]):
                    steps.reply = await self.func(*args, **kwargs)
        return steps.value

    # ------------------------------------------------------------------------------ plan

    def _plan(self, store: Store, key: str) -> Plan:
        if bypassing.get():
            for recording in recordings.get():
                recording.spoil("inside sqlaopt.cache.bypass()")
            count(self.namespace, "bypasses")
            return (yield ("call", Recording()))
        value = yield from self._lookup(key)
        if value is not _MISS:
            return value
        flight, leader = _flights.join(key)
        if not leader:
            yield ("wait", flight)
            value = yield from self._lookup(key)
            if value is not _MISS:
                return value
        recording = Recording()
        try:
            value = yield ("call", recording)
        finally:
            if leader:
                flight.finish()
        count(self.namespace, "misses")
        if not recording.versions:  # it ran no statement: it still depends on the epoch
            found = yield ("read", (), None)
            if found is FAILED:
                return value
            recording.add(found[0])
        payload = self._payload(recording, value)
        if payload is not None and (yield ("write", key, payload)):
            count(self.namespace, "stores")
        return value

    def _lookup(self, key: str) -> Plan:
        found = yield ("read", (), key)
        if found is FAILED or found[1] is None:
            return _MISS
        try:
            entry = loads(found[1])
            versions: dict[str, str] = entry["v"]
        except (DecodeError, KeyError, TypeError):
            return _MISS
        tables = frozenset(versions) - {ALL}
        now = yield ("read", tables, None)
        if now is FAILED or now[0] != versions:
            return _MISS
        if lane_pending(tables):  # the caller's own uncommitted writes: run it for real
            count(self.namespace, "bypasses")
            return _MISS
        try:
            value = decode(entry["x"], self.classes())
        except (DecodeError, KeyError):
            return _MISS
        for recording in recordings.get():
            recording.add(versions)
        count(self.namespace, "hits")
        return value

    def _payload(self, recording: Recording, value: Any) -> bytes | None:
        if recording.unsafe is not None:
            logger.debug("sqlaopt cache: not storing %s: %s", self.name, recording.unsafe)
            return None
        try:
            payload = dumps({"v": recording.versions, "x": encode(value, self.classes())})
        except EncodeError as error:
            self._warn_once(f"its result holds {error}, which the cache cannot store exactly "
                            "(name dataclasses, named tuples and enums in the return "
                            "annotation)")
            return None
        return payload if len(payload) <= MAX_ENTRY_BYTES else None

    def _warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            logger.warning("sqlaopt cache: %s is not cached: %s", self.name, message)

    # ---------------------------------------------------------------------- keys, classes

    def _key(self, store: Store | None, args: tuple[Any, ...], kwargs: dict[str, Any]
             ) -> str | None:
        """The entry key; None when the arguments do not fit the signature (the call then
        raises the usual TypeError)."""
        if store is None:
            return None
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        items = []
        for name, value in bound.arguments.items():
            if name in self.ignored:
                continue
            try:
                items.append([name, canonical(value, name, of_handle)])
            except UnkeyableError as error:
                raise CacheKeyError(
                    f"cannot key argument {error.path!r} of {self.func.__qualname__} "
                    f"({type(error.value).__module__}.{type(error.value).__qualname__}): keys "
                    f"are built from {_KEYABLE}; leave it out with "
                    f"@cached(..., ignore=({name!r},))") from None
        return store.entry_key(digest(["f", FORMAT, self.namespace, self.name, items]))

    def classes(self) -> dict[str, type]:
        if self._classes is None:
            self._classes = _annotated_classes(self.func)
        return self._classes


class _Steps:
    """Walks a plan: hands it each step's reply, or the exception the function raised."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.reply: Any = None
        self.error: BaseException | None = None
        self.value: Any = None

    def next(self) -> tuple[Any, ...] | None:
        """The next step, or None once the plan returned (its value is in ``value``)."""
        try:
            step = (self.plan.send(self.reply) if self.error is None
                    else self.plan.throw(self.error))
        except StopIteration as done:
            self.value = done.value
            return None
        self.reply, self.error = None, None
        return step

    @contextlib.contextmanager
    def calling(self, recording: Recording) -> Iterator[None]:
        """Run the function with ``recording`` active; what it raises goes to the plan (which
        re-raises it after releasing its flight)."""
        token = recordings.set((*recordings.get(), recording))
        try:
            yield
        except BaseException as raised:
            self.error = raised
        finally:
            recordings.reset(token)


def _annotated_classes(func: Callable[..., Any]) -> dict[str, type]:
    """Dataclasses, named tuples and enums named in ``func``'s return annotation (and in
    their fields' annotations): the only classes a cached result may rebuild."""
    try:
        pending = [typing.get_type_hints(func).get("return")]
    except Exception:  # unresolvable annotations: plain values only
        return {}
    found: dict[str, type] = {}
    while pending:
        hint = pending.pop()
        if typing.get_origin(hint) is not None:
            pending.extend(typing.get_args(hint))
            continue
        if not isinstance(hint, type) or class_id(hint) in found:
            continue
        is_named_tuple = issubclass(hint, tuple) and hasattr(hint, "_fields")
        if dataclasses.is_dataclass(hint) or is_named_tuple or issubclass(hint, enum.Enum):
            found[class_id(hint)] = hint
            with contextlib.suppress(Exception):  # a field annotation that does not resolve
                pending.extend(typing.get_type_hints(hint).values())
    return found
