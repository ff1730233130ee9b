"""The Redis backend: versions and entries in Redis, so every worker and host sees one truth.

Each operation is written once, as a plan that yields Redis commands (a tuple, or a list of
tuples for one pipeline) and receives their replies; a sync runner drives it with
``redis.Redis`` and an async runner with ``redis.asyncio`` (one client per event loop: an
asyncio connection belongs to the loop that opened it). A sync client given by the
application serves asyncio callers through the default thread pool.
"""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Generator, Sequence
from typing import Any

from ._backends import Backend
from ._errors import CacheError

__all__ = ["REDIS_SCHEMES", "RedisBackend", "is_redis_client"]

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

Command = tuple[Any, ...]
Plan = Generator["Command | list[Command]", Any, Any]

_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) end return 0")
_SCAN_BATCH = 500


def _redis() -> Any:
    try:
        import redis
    except ImportError:
        raise CacheError(
            "the Redis backend needs the redis client (redis>=5): pip install 'sqlaopt[redis]'"
        ) from None
    return redis


def is_redis_client(value: object) -> bool:
    """Whether ``value`` looks like a redis-py client, without importing redis."""
    return type(value).__module__.split(".")[0] == "redis"


class RedisBackend(Backend):
    """Versions and entries in Redis.

    ``target`` is a ``redis://`` / ``rediss://`` / ``unix://`` URL (the backend opens sync and
    asyncio clients with ``timeout`` seconds for connecting and for each reply) or a
    ``redis.Redis`` client (its own timeouts apply; asyncio callers use it from a worker
    thread). ``lock=True`` adds a Redis lock per missing entry, so across processes too only
    one computes it while the others wait up to ``lock_seconds`` for its result.
    """

    io = True

    def __init__(self, target: object, *, timeout: float = 0.1, lock: bool = False,
                 lock_seconds: float = 10.0) -> None:
        redis = _redis()
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise CacheError(f"timeout must be a positive number of seconds, not {timeout!r}")
        if not isinstance(lock_seconds, (int, float)) or lock_seconds <= 0:
            raise CacheError(f"lock_seconds must be a positive number, not {lock_seconds!r}")
        self.timeout = float(timeout)
        self.lock = bool(lock)
        self.lock_seconds = float(lock_seconds)
        self._url: str | None = None
        self._owned = False
        if isinstance(target, str):
            if not target.startswith(REDIS_SCHEMES):
                raise CacheError(f"a Redis URL starts with redis://, rediss:// or unix://, "
                                 f"not {target!r}")
            self._url = target
            self._client = redis.Redis.from_url(target, socket_timeout=self.timeout,
                                                socket_connect_timeout=self.timeout)
            self._owned = True
        elif isinstance(target, redis.Redis):
            self._client = target
        elif is_redis_client(target):
            raise CacheError(
                f"{type(target).__module__}.{type(target).__qualname__} is not supported: pass "
                "a redis:// URL (sqlaopt opens sync and asyncio clients) or a redis.Redis client"
            )
        else:
            raise CacheError(f"RedisBackend needs a redis:// URL or a redis.Redis client, "
                             f"not {target!r}")
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary())

    def __repr__(self) -> str:
        where = self._url or repr(self._client)
        return f"RedisBackend({where!r}, timeout={self.timeout}, lock={self.lock})"

    # ---------------------------------------------------------------------------- plans

    @staticmethod
    def _read(version_keys: Sequence[str], entry_key: str | None) -> Plan:
        keys = [*version_keys, entry_key] if entry_key is not None else list(version_keys)
        values = yield ("MGET", *keys)
        versions: list[Any] = list(values[:len(version_keys)])
        missing = [i for i, value in enumerate(versions) if value is None]
        if missing:
            fresh = [(version_keys[i], secrets.token_hex(8)) for i in missing]
            replies = yield [*(("SET", key, token, "NX") for key, token in fresh),
                             ("MGET", *(key for key, _ in fresh))]
            for i, value in zip(missing, replies[-1], strict=True):
                versions[i] = value
        entry = values[-1] if entry_key is not None else None
        return [_text(v) for v in versions], entry

    @staticmethod
    def _write(entry_key: str, value: bytes, ttl: float) -> Plan:
        yield ("SET", entry_key, value, "PX", max(1, int(ttl * 1000)))

    @staticmethod
    def _bump(version_keys: Sequence[str]) -> Plan:
        yield ("MSET", *(part for key in version_keys for part in (key, secrets.token_hex(8))))

    @staticmethod
    def _acquire(lock_key: str, seconds: float) -> Plan:
        token = secrets.token_hex(8)
        taken = yield ("SET", lock_key, token, "NX", "PX", max(1, int(seconds * 1000)))
        return token if taken else None

    @staticmethod
    def _release(lock_key: str, token: str) -> Plan:
        yield ("EVAL", _RELEASE, 1, lock_key, token)

    @staticmethod
    def _clear(prefix: str) -> Plan:
        pattern = "".join(f"\\{c}" if c in "*?[]\\" else c for c in prefix) + "*"
        cursor, removed = 0, 0
        while True:
            cursor, keys = yield ("SCAN", cursor, "MATCH", pattern, "COUNT", _SCAN_BATCH)
            if keys:
                removed += (yield ("DEL", *keys))
            if int(cursor) == 0:
                return removed

    # -------------------------------------------------------------------------- runners

    def _run(self, plan: Plan) -> Any:
        reply: Any = None
        try:
            while True:
                command = plan.send(reply)
                reply = _execute(self._client, command)
        except StopIteration as done:
            return done.value

    async def _arun(self, plan: Plan) -> Any:
        if self._url is None:
            return await asyncio.get_running_loop().run_in_executor(None, self._run, plan)
        client = self._async_client()
        reply: Any = None
        try:
            while True:
                command = plan.send(reply)
                reply = await _aexecute(client, command)
        except StopIteration as done:
            return done.value

    def _async_client(self) -> Any:
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            client = _redis().asyncio.Redis.from_url(
                self._url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
            self._async_clients[loop] = client
        return client

    # ------------------------------------------------------------------------ interface

    def read(self, version_keys: Sequence[str], entry_key: str | None
             ) -> tuple[list[str], bytes | None]:
        result: tuple[list[str], bytes | None] = self._run(self._read(version_keys, entry_key))
        return result

    def write(self, entry_key: str, value: bytes, ttl: float) -> None:
        self._run(self._write(entry_key, value, ttl))

    def bump(self, version_keys: Sequence[str]) -> None:
        self._run(self._bump(version_keys))

    def acquire(self, lock_key: str, seconds: float) -> str | None:
        if not self.lock:
            return "local"
        token: str | None = self._run(self._acquire(lock_key, seconds))
        return token

    def release(self, lock_key: str, token: str) -> None:
        if self.lock:
            self._run(self._release(lock_key, token))

    def clear(self, prefix: str) -> int:
        removed: int = self._run(self._clear(prefix))
        return removed

    def close(self) -> None:
        if self._owned:
            self._client.close()

    async def aread(self, version_keys: Sequence[str], entry_key: str | None
                    ) -> tuple[list[str], bytes | None]:
        result: tuple[list[str], bytes | None] = await self._arun(
            self._read(version_keys, entry_key))
        return result

    async def awrite(self, entry_key: str, value: bytes, ttl: float) -> None:
        await self._arun(self._write(entry_key, value, ttl))

    async def abump(self, version_keys: Sequence[str]) -> None:
        await self._arun(self._bump(version_keys))

    async def aacquire(self, lock_key: str, seconds: float) -> str | None:
        if not self.lock:
            return "local"
        token: str | None = await self._arun(self._acquire(lock_key, seconds))
        return token

    async def arelease(self, lock_key: str, token: str) -> None:
        if self.lock:
            await self._arun(self._release(lock_key, token))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _execute(client: Any, command: Command | list[Command]) -> Any:
    if isinstance(command, list):
        pipe = client.pipeline(transaction=False)
        for part in command:
            pipe.execute_command(*part)
        return pipe.execute()
    return client.execute_command(*command)


async def _aexecute(client: Any, command: Command | list[Command]) -> Any:
    if isinstance(command, list):
        pipe = client.pipeline(transaction=False)
        for part in command:
            pipe.execute_command(*part)
        return await pipe.execute()
    return await client.execute_command(*command)
