"""``GET /contacts/export``: every contact (or one list's members) as a CSV download.

The file is written by :func:`courriel.marketing.csvexport.export_contacts`, the code of
``courriel contacts export``, so it imports back through the dashboard or the CLI.

Invariants:
- Memory stays flat whatever the number of contacts: the exporter writes into a
  temporary file (in 64 KiB pieces) while the response reads that file from the last
  offset it sent, so the download starts after the first pieces and a slow client
  makes the file grow on disk, never in RAM. The file is unlinked from its creation.
- Only marketers and owners export (personal data in bulk); viewers get 403.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from litestar import Request, Response, get
from litestar.response import Stream

from courriel.marketing.csvexport import export_contacts
from courriel.marketing.lists import find_list
from courriel.storage.db import Database
from courriel.web.app import Services
from courriel.web.dashboard.access import allow
from courriel.web.dashboard.contacts import require_marketer
from courriel.web.dashboard.render import page

__all__ = ["ROUTES", "stream_export"]

_log = logging.getLogger(__name__)
PIECE = 64 * 1024


class _SpoolWriter:
    """A text sink for the exporter: buffers, then appends UTF-8 pieces to ``fd``."""

    def __init__(self, fd: int, wake: asyncio.Event) -> None:
        self.fd = fd
        self.wake = wake
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str, /) -> int:
        self.parts.append(text)
        self.size += len(text)
        if self.size >= PIECE:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self.parts:
            os.write(self.fd, "".join(self.parts).encode())
            self.parts.clear()
            self.size = 0
        self.wake.set()


async def stream_export(db: Database, list_name: str | None) -> AsyncIterator[bytes]:
    """The CSV bytes of :func:`export_contacts`, as they are written (see the module doc)."""
    wake = asyncio.Event()
    with tempfile.TemporaryFile() as spool:
        fd = spool.fileno()
        writer = _SpoolWriter(fd, wake)

        async def produce() -> None:
            try:
                await export_contacts(db, writer, list_name=list_name)
            finally:
                writer.flush()

        task = asyncio.ensure_future(produce())
        sent = 0
        try:
            while True:
                piece = os.pread(fd, PIECE, sent)
                if piece:
                    sent += len(piece)
                    yield piece
                    continue
                if task.done():
                    # Raises what the exporter raised: the download ends short, not "complete".
                    task.result()
                    return
                wake.clear()
                await wake.wait()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


@get("/contacts/export", **allow("marketing"))
async def export_csv(request: Request[Any, Any, Any], services: Services) -> Response[Any]:
    """Download the contacts (``?list=NAME``: that list's members) as CSV."""
    require_marketer(request, "export contacts")
    list_name = request.query_params.get("list") or None
    if list_name is not None:
        async with services.db.read() as conn:
            found = await find_list(conn, list_name)
        if found is None:
            return page(
                request,
                "error.html",
                status=404,
                active="contacts",
                title="No such list",
                message=f"There is no list named {list_name!r}.",
            )
    stamp = services.clock().strftime("%Y%m%d-%H%M")
    return Stream(
        stream_export(services.db, list_name),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="contacts-{stamp}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


ROUTES = [export_csv]
