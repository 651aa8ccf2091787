"""The HTTP listener: uvicorn serving the Litestar app on the node's own asyncio loop.

Same shape as the mail listeners (``Pop3Server``): ``start(host, port) -> (host, port)``,
``port`` once bound, ``stop(grace)``; the composition root runs it as the ``http`` role on
``listen.http``.

Invariants:
- The socket is bound here, before uvicorn starts, so a busy port is an ``OSError`` for the
  caller (uvicorn itself would ``sys.exit``) and port 0 gives the real port at once.
- uvicorn never installs signal handlers (``Server.serve`` would): the node owns signals.
  We drive uvicorn's ``startup`` / ``main_loop`` / ``shutdown`` steps ourselves.
- uvicorn configures no logging (``log_config=None``) and writes no access log (paths carry
  link tokens); the ``uvicorn.error`` logger propagates to the node's handlers.
- uvicorn's proxy headers are off: the client address behind a reverse proxy is resolved by
  :mod:`courriel.web.clientip` from ``http.trusted_proxies`` (uvicorn's own default would
  trust 127.0.0.1 or ``$FORWARDED_ALLOW_IPS``, outside our config).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket

import uvicorn
from litestar import Litestar

__all__ = ["HttpServer"]

log = logging.getLogger(__name__)


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(socket.SOMAXCONN)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    """Serve an ASGI app over HTTP/1.1 with uvicorn.

    Attributes:
        port: the bound port, once started (0 before).
    """

    def __init__(self, app: Litestar) -> None:
        self._app = app
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind and start answering.

        Args:
            host: the address to bind (tests use ``127.0.0.1``).
            port: the port; 0 picks a free one.

        Returns:
            The bound host and port.

        Raises:
            OSError: the address cannot be bound.
        """
        sock = _bind(host, port)
        config = uvicorn.Config(
            self._app,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            sock.close()
            raise
        self._server, self._socket = server, sock
        # main_loop refreshes the Date header each second and returns once should_exit is set.
        self._loop_task = asyncio.create_task(server.main_loop(), name="http-main-loop")
        bound = sock.getsockname()
        self.port = int(bound[1])
        log.info("HTTP listening on %s:%d", bound[0], self.port)
        return str(bound[0]), self.port

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, let requests in flight finish for ``grace`` seconds, then cut."""
        server, sock = self._server, self._socket
        if server is None:
            return
        server.should_exit = True
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        # uvicorn takes whole seconds here.
        server.config.timeout_graceful_shutdown = max(math.ceil(grace), 0)
        await server.shutdown(sockets=[sock] if sock is not None else None)
        self._server = self._socket = None
