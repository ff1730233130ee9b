"""Per-request N+1 scopes for WSGI applications (Flask, Django, ...).

>>> app.wsgi_app = NPlusOneMiddleware(app.wsgi_app, mode="log")   # Flask
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from typing import Any

from . import batching
from .detect._hook import enter, leave
from .detect._scope import Settings

__all__ = ["NPlusOneMiddleware"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class NPlusOneMiddleware:
    """Run each request, including the iteration of its response body, in its own N+1 scope.

    Modes as in :func:`sqlaopt.detect`; the default ``"log"`` logs each distinct N+1 once per
    request, naming the request method and path. ``batch=True`` runs each request, body
    included, under :func:`sqlaopt.batch`.
    """

    def __init__(
        self, app: WSGIApp, mode: str = "log", threshold: int = 2, allow: Iterable[str] = (),
        batch: bool = False,
    ) -> None:
        self.app = app
        self.settings = Settings.checked(mode, threshold, allow)
        self.batch = batching.checked_flag(batch, "batch")  # sqlaopt.batching, per request

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        if self.settings.mode == "off" and not self.batch:
            return self.app(environ, start_response)
        request = ExitStack()  # what the request opened, closed with its body
        if self.batch:
            request.enter_context(batching.batch())  # sqlaopt.batching
        if self.settings.mode != "off":
            label = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"
            request.callback(leave, *enter(self.settings, label=label))
        try:
            body = self.app(environ, start_response)
        except BaseException:
            request.close()
            raise
        return _ClosingBody(body, request)


class _ClosingBody:
    """The response body; the request's scope ends when the server closes it (PEP 3333)."""

    def __init__(self, body: Iterable[bytes], request: ExitStack) -> None:
        self._body, self._request = body, request
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
            self._request.close()
