"""Drives coserve's WebSocket endpoints with python3-websockets (Debian's
package), a reference client: echo of text and binary at several sizes,
with and without permessage-deflate (context takeover on and off),
fragmented sends, ping/pong, close codes, and the server's 1009 and 1007.
Prints "ok NAME" per check and exits non-zero at the first failure.

usage: /usr/bin/python3 ws_interop.py PORT
"""
import asyncio
import sys

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

PORT = int(sys.argv[1])
BASE = f"ws://127.0.0.1:{PORT}"
GUARD = 10


def ok(name):
    print("ok", name, flush=True)


async def echo_round(ws, msg):
    await ws.send(msg)
    got = await asyncio.wait_for(ws.recv(), GUARD)
    assert type(got) is type(msg), (type(got), type(msg))
    assert got == msg, f"{len(got)} != {len(msg)}"


async def echo_all(ws, name):
    for n in (0, 1, 125, 126, 65535, 65536, 500_000):
        await echo_round(ws, "é" * (n // 2))
        await echo_round(ws, bytes(i % 251 for i in range(n)))
    ok(name)


async def main():
    # no compression
    async with websockets.connect(BASE + "/ws/echo", compression=None,
                                  max_size=2**22) as ws:
        assert not ws.extensions
        await echo_all(ws, "echo_plain")
        # a fragmented message: the client sends an iterable as fragments
        await ws.send(["frag", "mented ", "text ✓"])
        assert await asyncio.wait_for(ws.recv(), GUARD) == "fragmented text ✓"
        ok("fragmented_send")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, GUARD)
        ok("ping_pong")
        await ws.close(code=4001, reason="done here")
        assert ws.close_code == 4001, ws.close_code
        ok("close_echoes_code")

    # permessage-deflate with context takeover (the default offer)
    async with websockets.connect(BASE + "/ws/echo", max_size=2**22) as ws:
        assert ws.extensions and ws.extensions[0].name == "permessage-deflate"
        await echo_all(ws, "echo_deflate")

    # permessage-deflate without context takeover, small windows
    factory = ClientPerMessageDeflateFactory(
        server_no_context_takeover=True, client_no_context_takeover=True,
        server_max_window_bits=10, client_max_window_bits=9)
    async with websockets.connect(BASE + "/ws/echo", extensions=[factory],
                                  compression=None, max_size=2**22) as ws:
        ext = ws.extensions[0]
        assert ext.remote_no_context_takeover and ext.local_no_context_takeover
        await echo_all(ws, "echo_deflate_no_context_takeover")

    # over the server's limit: 1009
    async with websockets.connect(BASE + "/wstest?max=1000",
                                  compression=None) as ws:
        await ws.send(b"x" * 1001)
        try:
            await asyncio.wait_for(ws.recv(), GUARD)
            raise AssertionError("no close after an oversized message")
        except websockets.ConnectionClosed as e:
            assert e.rcvd and e.rcvd.code == 1009, e
    ok("too_big_1009")

    # a subprotocol
    async with websockets.connect(BASE + "/wstest/info?proto=chat.v2,chat.v1",
                                  subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2", ws.subprotocol
    ok("subprotocol")


asyncio.run(main())
print("all ok", flush=True)
