#!/usr/bin/python3
# lib-relay.py LISTEN_PORT TARGET_PORT DELAY_MS [DROP_AFTER]: a TCP relay
# on 127.0.0.1 for the session tests (issue 15): every chunk is held
# DELAY_MS before it is passed on, each way, in order (a link with
# 2 x DELAY_MS of round trip; this kernel has no tc netem).  With
# DROP_AFTER, the first connection whose client has sent more than that
# many bytes is cut at once, both ways (a link lost in the middle of a
# pack); later ones are left alone.  SIGUSR1 cuts every connection open
# now.  It prints "relay listening" once it accepts, "cut" per cut.
import asyncio, signal, sys, time

LISTEN, TARGET = int(sys.argv[1]), int(sys.argv[2])
DELAY = float(sys.argv[3]) / 1000
DROP_AFTER = int(sys.argv[4]) if len(sys.argv) > 4 else 0
dropped = False
open_conns = set()


def cut(conn):
    for w in conn:
        try:
            w.transport.abort()
        except Exception:
            pass
    print("cut", flush=True)


async def pipe(reader, writer, conn, counting):
    global dropped
    q = asyncio.Queue()
    sent = 0

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
        try:
            data = await reader.read(65536)
        except Exception:
            data = b""
        if data and counting:
            sent += len(data)
            if DROP_AFTER and not dropped and sent > DROP_AFTER:
                dropped = True
                cut(conn)
                data = b""
        q.put_nowait((time.monotonic() + DELAY, data if data else None))
        if not data:
            break
    try:
        await task
    except Exception:
        pass


async def handle(cr, cw):
    try:
        sr, sw = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        cw.close()
        return
    conn = (cw, sw)
    open_conns.add(conn)
    await asyncio.gather(pipe(cr, sw, conn, True), pipe(sr, cw, conn, False),
                         return_exceptions=True)
    open_conns.discard(conn)


async def main():
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1,
                            lambda: [cut(c) for c in list(open_conns)])
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    print("relay listening", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
