"""Per-request N+1 scopes for ASGI applications (FastAPI, Starlette, ...).

>>> app.add_middleware(NPlusOneMiddleware, mode="log")   # FastAPI / Starlette
>>> app = NPlusOneMiddleware(app, mode="log")             # any ASGI app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextlib import nullcontext
from typing import Any

from . import batching
from .detect._hook import enter, leave
from .detect._scope import Settings

__all__ = ["NPlusOneMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class NPlusOneMiddleware:
    """Run each HTTP or WebSocket request in its own N+1 scope.

    In ``"log"`` mode (the default) each distinct N+1 of a request is logged once, when the
    request ends, on the ``sqlaopt.nplusone`` logger; the message and the record's
    ``context`` field name the request method and path. Other modes as in
    :func:`sqlaopt.detect`. ``batch=True`` runs each request under :func:`sqlaopt.batch`.
    """

    def __init__(
        self, app: ASGIApp, mode: str = "log", threshold: int = 2, allow: Iterable[str] = (),
        batch: bool = False,
    ) -> None:
        self.app = app
        self.settings = Settings.checked(mode, threshold, allow)
        self.batch = batching.checked_flag(batch, "batch")  # sqlaopt.batching, per request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with batching.batch() if self.batch else nullcontext():  # sqlaopt.batching
            await self._call(scope, receive, send)

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.settings.mode == "off":
            await self.app(scope, receive, send)
            return
        label = f"{scope.get('method', 'WEBSOCKET')} {scope.get('path', '')}"
        request_scope, token = enter(self.settings, label=label)
        try:
            await self.app(scope, receive, send)
        finally:
            leave(request_scope, token)
