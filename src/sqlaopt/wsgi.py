"""Per-request N+1 scopes for WSGI applications (Flask, Django, ...).

>>> app.wsgi_app = NPlusOneMiddleware(app.wsgi_app, mode="log")   # Flask
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .detect._hook import enter, leave
from .detect._scope import Scope, Settings

__all__ = ["NPlusOneMiddleware"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class NPlusOneMiddleware:
    """Run each request, including the iteration of its response body, in its own N+1 scope.

    Modes as in :func:`sqlaopt.detect`; the default ``"log"`` logs each distinct N+1 once per
    request, naming the request method and path.
    """

    def __init__(
        self, app: WSGIApp, mode: str = "log", threshold: int = 2, allow: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.settings = Settings.checked(mode, threshold, allow)

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.settings.mode == "off":
            return self.app(environ, start_response)
        label = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"
        scope, token = enter(self.settings, label=label)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            leave(scope, token)
            raise
        return _ClosingBody(body, scope, token)


class _ClosingBody:
    """The response body; the request's scope ends when the server closes it (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], scope: Scope, token: Any) -> None:
        self._body, self._scope, self._token = body, scope, token
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            leave(self._scope, self._token)
