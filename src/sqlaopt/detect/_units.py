"""Requests are units of work: the same line running once per request is never an N+1.

Under the pytest plugin, each request a test sends through a test client or that a web
framework serves runs in a nested scope of its own (a *unit*), so a test that calls
``client.get(...)`` in a loop is not taken for an N+1, while an N+1 inside one request is, and
reaches the test's verdict. The units are opened by wrapping, when their modules are imported,
the entry points below (``wrapt`` post-import hooks); outside a test they pass straight through.
sqlaopt's own middlewares open the same kind of scope in production.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import wrapt

from ._emit import internal_error
from ._hook import enter, leave, running_test_scope
from ._scope import Scope, Settings, active_scope

__all__ = [
    "close_detached",
    "detach",
    "finish",
    "install_request_units",
    "open_request_scope",
    "request_label",
    "unit",
]

_MAX_LABEL: Final = 200


def request_label(method: object, path: object) -> str:
    """``"GET /path"`` for a log line: control characters escaped (a ``%0A`` in a path cannot
    split a record), bounded in length."""
    text = f"{method} {path}"
    clean = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)
    return clean if len(clean) <= _MAX_LABEL else clean[: _MAX_LABEL - 1] + "…"


def open_request_scope(settings: Settings, label: str) -> Scope | None:
    """A middleware's scope for one request (sampled), or None if opening it failed: then the
    request runs unobserved, never broken."""
    try:
        return enter(settings.sampled(), label=label, owns=False)
    except Exception as error:
        internal_error(error)
        return None


def _enclosing() -> Scope | None:
    scope = active_scope.get()
    if scope is not None and scope.closed:
        scope = scope.open_ancestor()
    return scope if scope is not None else running_test_scope()


@contextmanager
def unit(label: str) -> Iterator[None]:
    """Run the block as one unit of work nested in the scope active here (nothing without
    one): it counts on its own, and its detections reach the enclosing scope's verdict."""
    try:
        parent = _enclosing()
        scope = None
        if parent is not None and parent.observing:
            settings = Settings("record", parent.settings.threshold, parent.settings.allow,
                                test_loops=parent.settings.test_loops)
            scope = enter(settings, label=label, owns=False)
    except Exception as error:
        internal_error(error)
        scope = None
    try:
        yield
    finally:
        if scope is not None:
            leave(scope)


# ---------------------------------------------------------------- scopes outliving a call

_detached: set[Scope] = set()  # held until closed: at most one per request in flight


def detach(scope: Scope) -> None:
    """Take an open scope out of the current context (its body runs later, or never): it stays
    open until :func:`leave` or :func:`close_detached`."""
    token, scope.token = scope.token, None
    if token is not None:
        try:
            active_scope.reset(token)
        except (ValueError, RuntimeError):
            active_scope.set(scope.parent)
    _detached.add(scope)


def finish(scope: Scope) -> None:
    """The detached scope ends normally (its body was closed)."""
    _detached.discard(scope)
    leave(scope)


def close_detached() -> None:
    """Close every detached scope still open (a response body nobody closed)."""
    while _detached:
        try:
            scope = _detached.pop()
        except KeyError:  # another thread took the last one
            return
        leave(scope)


# ---------------------------------------------------------------- entry points

Wrapper = Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], Any]


def _asgi_label(scope: Any) -> str | None:
    if not isinstance(scope, dict) or scope.get("type") not in ("http", "websocket"):
        return None
    return request_label(scope.get("method", "WEBSOCKET"), scope.get("path", ""))


def _asgi_app(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    label = _asgi_label(args[0] if args else kwargs.get("scope"))
    if label is None:
        return wrapped(*args, **kwargs)

    async def run() -> Any:
        with unit(label):
            return await wrapped(*args, **kwargs)

    return run()


def _wsgi_app(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    environ = args[0] if args else kwargs.get("environ", {})
    with unit(request_label(environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", ""))):
        return wrapped(*args, **kwargs)


def _run_wsgi_app(wrapped: Any, instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    environ = args[1] if len(args) > 1 else kwargs.get("environ", {})
    with unit(request_label(environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", ""))):
        return wrapped(*args, **kwargs)


def _httpx_label(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    request = args[0] if args else kwargs.get("request")
    return request_label(getattr(request, "method", "?"),
                         getattr(getattr(request, "url", None), "path", ""))


def _httpx_async(wrapped: Any, instance: Any, args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> Any:
    async def run() -> Any:
        with unit(_httpx_label(args, kwargs)):
            return await wrapped(*args, **kwargs)

    return run()


def _httpx_sync(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    with unit(_httpx_label(args, kwargs)):
        return wrapped(*args, **kwargs)


def _django(wrapped: Any, instance: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    request = args[0] if args else kwargs.get("request")
    with unit(request_label(getattr(request, "method", "?"), getattr(request, "path", ""))):
        return wrapped(*args, **kwargs)


def _django_async(wrapped: Any, instance: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
    request = args[0] if args else kwargs.get("request")

    async def run() -> Any:
        with unit(request_label(getattr(request, "method", "?"), getattr(request, "path", ""))):
            return await wrapped(*args, **kwargs)

    return run()


ENTRY_POINTS: Final[tuple[tuple[str, str, Wrapper], ...]] = (
    ("starlette.applications", "Starlette.__call__", _asgi_app),
    ("flask.app", "Flask.wsgi_app", _wsgi_app),
    ("werkzeug.test", "run_wsgi_app", _run_wsgi_app),
    ("httpx", "ASGITransport.handle_async_request", _httpx_async),
    ("httpx", "WSGITransport.handle_request", _httpx_sync),
    ("django.core.handlers.base", "BaseHandler.get_response", _django),
    ("django.core.handlers.base", "BaseHandler.get_response_async", _django_async),
)
"""(module, attribute, wrapper): the request entry points of the common frameworks and test
clients (FastAPI and Starlette's TestClient go through ``Starlette.__call__``)."""

_installed = False


def install_request_units() -> None:
    """Wrap the entry points above, now or when their modules are imported; idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    for module, attribute, wrapper in ENTRY_POINTS:
        wrapt.register_post_import_hook(_wrapping(attribute, wrapper), module)


def _wrapping(attribute: str, wrapper: Wrapper) -> Callable[[Any], None]:
    def hook(module: Any) -> None:
        with contextlib.suppress(AttributeError):  # a version without this entry point
            wrapt.wrap_function_wrapper(module, attribute, wrapper)

    return hook
