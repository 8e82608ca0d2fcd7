"""The generator's pool does not reuse a keep-alive connection the server has closed while idle."""

from __future__ import annotations

import asyncio

from loadtest.engine import Pool, http_request

RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def test_connection_closed_by_server_while_idle_is_not_reused():
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(RESPONSE)  # keep-alive reply, then the server drops the idle connection
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = Pool("127.0.0.1", port)
    try:
        raw = http_request("127.0.0.1", port, "/x", b"{}")
        first = await pool.request(raw, timeout=2)
        await asyncio.sleep(0.1)  # the server's FIN arrives while the connection sits idle
        second = await pool.request(raw, timeout=2)
    finally:
        await pool.close()
        server.close()
        await server.wait_closed()
    assert (first.status, second.status) == (200, 200)
    assert pool.opened == 2
