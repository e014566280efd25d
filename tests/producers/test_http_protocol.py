"""``HeadBodyProtocol``: each response's head leaves with its body, in one write, and a head
with no body after it (HEAD, 100-continue) still leaves at the end of the loop iteration.
The last test serves real HTTP through uvicorn with it."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import uvicorn

from producers.http_protocol import HeadBodyProtocol, _HeadBodyTransport

HEAD = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n"


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> Any:
        return f"extra {name}"


def _joined(loop: asyncio.AbstractEventLoop) -> tuple[_HeadBodyTransport, FakeTransport]:
    fake = FakeTransport()
    return _HeadBodyTransport(fake, loop), fake  # type: ignore[arg-type]


def test_a_head_and_its_body_go_out_in_one_write() -> None:
    async def main() -> list[bytes]:
        joined, fake = _joined(asyncio.get_running_loop())
        joined.write(HEAD)
        joined.write(b"{}")
        await asyncio.sleep(0)  # the flush scheduled for the head finds nothing left
        return fake.writes

    assert asyncio.run(main()) == [HEAD + b"{}"]


def test_a_head_alone_leaves_at_the_end_of_the_iteration_and_before_close() -> None:
    async def main() -> None:
        joined, fake = _joined(asyncio.get_running_loop())
        joined.write(HEAD)
        assert fake.writes == []
        await asyncio.sleep(0)
        assert fake.writes == [HEAD]
        joined.write(HEAD)
        joined.close()
        assert fake.writes == [HEAD, HEAD] and fake.closed
        assert joined.get_extra_info("peername") == "extra peername"

    asyncio.run(main())


def test_other_bytes_are_written_at_once() -> None:
    async def main() -> list[bytes]:
        joined, fake = _joined(asyncio.get_running_loop())
        joined.write(b"HTTP/1.1 chunk that is not a head")
        joined.write(b"body")
        return fake.writes

    assert asyncio.run(main()) == [b"HTTP/1.1 chunk that is not a head", b"body"]


async def _app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await receive()
    body = b'{"ok":true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


def test_uvicorn_serves_get_head_and_keep_alive_through_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(_app, port=port, http=HeadBodyProtocol, log_level="warning")
    server = uvicorn.Server(config)

    async def main() -> list[tuple[int, bytes]]:
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                answers = []
                for method in ("POST", "HEAD", "GET", "POST"):  # one kept-alive connection
                    response = await client.request(method, "/", content=b"x")
                    answers.append((response.status_code, response.content))
                return answers
        finally:
            server.should_exit = True
            await serving

    ok = (202, b'{"ok":true}')
    assert asyncio.run(main()) == [ok, (202, b""), ok, ok]
