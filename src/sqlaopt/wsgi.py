"""Per-request N+1 scopes for WSGI applications (Flask, Django, ...).

>>> app.wsgi_app = NPlusOneMiddleware(app.wsgi_app, mode="log")   # Flask
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

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
    unread response) has its scope closed at the next request.
    """

    def __init__(
        self, app: WSGIApp, mode: str = "log", threshold: int = 2, allow: Iterable[str] = (),
        *, sample_rate: float = 1.0,
    ) -> None:
        self.app = app
        self.settings = Settings.checked(mode, threshold, allow, sample_rate=sample_rate)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.settings.mode == "off":
            return self.app(environ, start_response)
        close_detached()  # bodies of earlier requests that were never closed
        label = request_label(environ.get("REQUEST_METHOD", "?"), environ.get("PATH_INFO", ""))
        scope = open_request_scope(self.settings, label)
        if scope is None:
            return self.app(environ, start_response)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            leave(scope)
            raise
        # Between the call and the server's iteration the scope must not be the caller's
        # (a test's own statements after an unread response are not the request's).
        detach(scope)
        return _ClosingBody(body, scope)


class _ClosingBody:
    """The response body; the request's scope is active while it is iterated and ends when
    the server closes it (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], scope: Scope) -> None:
        self._body, self._scope = body, scope

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._body)
        while True:
            token = active_scope.set(self._scope)
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            finally:
                active_scope.reset(token)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            finish(self._scope)
