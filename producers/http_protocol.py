"""uvicorn's httptools protocol, writing each response's head and body in one syscall.

uvicorn writes a response's head when the app sends ``http.response.start`` and its body on
``http.response.body``: two ``write`` calls, so two TCP segments and, on the other end, two
wake-ups of the sender waiting for our answer. For a small JSON answer those two writes cost
more CPU than the rest of the HTTP layer. ``HeadBodyProtocol`` holds the head back until the
body follows (in the same step of the app's task, for every answer of this app); if nothing
follows (``HEAD``, a 100-continue, a streamed body yet to come), the head still goes out at
the end of the loop iteration. The bytes and their order on the wire are unchanged.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["HeadBodyProtocol"]

_HEAD_START = b"HTTP/1.1 "
_HEAD_END = b"\r\n\r\n"


class _HeadBodyTransport:
    """The connection's transport, except that a response head waits for its body."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._head = b""

    def write(self, data: bytes) -> None:
        if self._head:
            data, self._head = self._head + data, b""
        elif data.startswith(_HEAD_START) and data.endswith(_HEAD_END):
            self._head = data
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HeadBodyProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` on a transport that joins each head to its body (module doc)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        joined = _HeadBodyTransport(transport, self.loop)
        super().connection_made(cast(asyncio.Transport, joined))
