"""Per-request N+1 scopes for ASGI applications (FastAPI, Starlette, ...).

>>> app.add_middleware(NPlusOneMiddleware, mode="log")   # FastAPI / Starlette
>>> app = NPlusOneMiddleware(app, mode="log")             # any ASGI app
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextlib import nullcontext
from typing import Any

from . import batching
from .detect._hook import leave
from .detect._scope import Settings
from .detect._units import open_request_scope, request_label

__all__ = ["NPlusOneMiddleware"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class NPlusOneMiddleware:
    """Run each HTTP or WebSocket request in its own N+1 scope.

    In ``"log"`` mode (the default) each distinct N+1 is logged on the ``sqlaopt.nplusone``
    logger when a request first shows it, with the request method and path; its repeats are
    aggregated into one summary record per window (see :func:`sqlaopt.install`). Other modes as
    in :func:`sqlaopt.detect`. ``sample_rate`` is the fraction of requests observed. Nothing of
    sqlaopt's reaches the application in any mode but ``"raise"``. ``batch=True`` runs each
    request under :func:`sqlaopt.batch`; ``slow_ms`` and ``plans`` as in
    :func:`sqlaopt.install`; ``unused_eager=True`` also reports the request's eager loads
    that nothing read (off by default: it watches every loaded instance), and
    ``explosion_factor`` as in :func:`sqlaopt.detect`.
    """

    def __init__(
        self, app: ASGIApp, mode: str = "log", threshold: int = 2, allow: Iterable[str] = (),
        *, sample_rate: float = 1.0, batch: bool = False, slow_ms: float | None = None,
        plans: Any = None, unused_eager: bool = False, explosion_factor: float = 10.0,
    ) -> None:
        self.app = app
        self.settings = Settings.checked(mode, threshold, allow, sample_rate=sample_rate,
                                         slow_ms=slow_ms, plans=plans,
                                         unused_eager=unused_eager,
                                         explosion_factor=explosion_factor)
        self.batch = batching.checked_flag(batch, "batch")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with batching.batch() if self.batch else nullcontext():
            await self._observed(scope, receive, send)

    async def _observed(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.settings.mode == "off":
            await self.app(scope, receive, send)
            return
        label = request_label(scope.get("method", "WEBSOCKET"), scope.get("path", ""))
        request_scope = open_request_scope(self.settings, label)
        try:
            await self.app(scope, receive, send)
        finally:
            if request_scope is not None:
                leave(request_scope)
