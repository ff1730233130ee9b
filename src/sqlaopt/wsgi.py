"""Per-request N+1 scopes for WSGI applications (Flask, Django, ...).

>>> app.wsgi_app = NPlusOneMiddleware(app.wsgi_app, mode="log")   # Flask
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from . import batching
from .detect._hook import leave
from .detect._scope import Scope, Settings, active_scope
from .detect._units import close_detached, detach, finish, open_request_scope, request_label

__all__ = ["NPlusOneMiddleware"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class NPlusOneMiddleware:
    """Run each request, including the iteration of its response body, in its own N+1 scope.

    Modes as in :func:`sqlaopt.detect`; the default ``"log"`` logs each distinct N+1 naming
    the request method and path (aggregated as in :func:`sqlaopt.install`). The scope ends
    when the server closes the response body; a body that is never closed (a test client's
    unread response) has its scope closed at the next request. ``batch=True`` runs the
    request, body included, under :func:`sqlaopt.batch`; ``slow_ms`` and ``plans`` as in
    :func:`sqlaopt.install`; ``unused_eager=True`` also reports the request's eager loads
    that nothing read (off by default: it watches every loaded instance), and
    ``explosion_factor`` as in :func:`sqlaopt.detect`.
    """

    def __init__(
        self, app: WSGIApp, mode: str = "log", threshold: int = 2, allow: Iterable[str] = (),
        *, sample_rate: float = 1.0, batch: bool = False, slow_ms: float | None = None,
        plans: Any = None, unused_eager: bool = False, explosion_factor: float = 10.0,
    ) -> None:
        self.app = app
        self.settings = Settings.checked(mode, threshold, allow, sample_rate=sample_rate,
                                         slow_ms=slow_ms, plans=plans,
                                         unused_eager=unused_eager,
                                         explosion_factor=explosion_factor)
        self.batch = batching.checked_flag(batch, "batch")

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        scope = None
        if self.settings.mode != "off":
            close_detached()  # bodies of earlier requests that were never closed
            scope = open_request_scope(self.settings, request_label(
                environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", "")))
        if scope is None and not self.batch:
            return self.app(environ, start_response)
        try:
            with self._batching():
                body = self.app(environ, start_response)
        except BaseException:
            if scope is not None:
                leave(scope)
            raise
        if scope is not None:
            # Between the call and the server's iteration the scope must not be the caller's
            # (a test's own statements after an unread response are not the request's).
            detach(scope)
        return _ClosingBody(body, scope, self._batching)

    def _batching(self) -> AbstractContextManager[object]:
        return batching.batch() if self.batch else nullcontext()


class _ClosingBody:
    """The response body; the request's scope (and batching) is active while it is iterated,
    and the scope ends when the server closes the body (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], scope: Scope | None,
                 batching: Callable[[], AbstractContextManager[object]]) -> None:
        self._body, self._scope, self._batching = body, scope, batching

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._body)
        while True:
            token = active_scope.set(self._scope) if self._scope is not None else None
            try:
                with self._batching():
                    chunk = next(chunks)
            except StopIteration:
                return
            finally:
                if token is not None:
                    active_scope.reset(token)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._scope is not None:
                finish(self._scope)
