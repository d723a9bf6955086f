#!/usr/bin/python3
# delay-relay.py LISTEN_PORT TARGET_PORT DELAY_MS: a TCP relay on
# 127.0.0.1 that holds every chunk DELAY_MS before passing it on, each
# way, in order: a link with 2 x DELAY_MS of round-trip time (this
# kernel has no tc netem).  For doc/persistent-peers.md; the issue's
# test 3 needs one like it.
import asyncio, sys, time

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000


async def pipe(reader, writer):
    q = asyncio.Queue()

    async def send():
        while True:
            due, data = await q.get()
            if data is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
        writer.close()

    task = asyncio.ensure_future(send())
    while True:
        data = await reader.read(65536)
        q.put_nowait((time.monotonic() + DELAY, data if data else None))
        if not data:
            break
    await task


async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        cw.close()
        return
    await asyncio.gather(pipe(cr, sw), pipe(sr, cw), return_exceptions=True)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    print("relay listening", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
