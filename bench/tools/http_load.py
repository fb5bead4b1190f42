#!/usr/bin/env python3
"""Load shapes wrk does not do, for the benchmark (standard library only):

  idle   hold N keep-alive connections open after one request each
  burst  N requests for one URL sent at the same moment on N connections
  warm   fetch BASE1 .. BASE<N> once each, with bounded concurrency

Requests go to a proxy in absolute form; everything stays on 127.0.0.1.
"""
import argparse
import asyncio
import json
import resource
import sys
import time


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def read_response(reader):
    """Reads one HTTP/1.1 response; returns (status, headers, body length)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0
    if "content-length" in headers:
        length = int(headers["content-length"])
        remaining = length
        while remaining > 0:
            chunk = await reader.read(min(remaining, 1 << 20))
            if not chunk:
                raise ConnectionError("body cut short")
            remaining -= len(chunk)
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            await reader.readexactly(size + 2)
            length += size
    return status, headers, length


def request_bytes(url):
    return f"GET {url} HTTP/1.1\r\nHost: bench\r\nUser-Agent: ferry-bench\r\n\r\n".encode()


async def idle(args):
    raise_fd_limit()
    host, port = args.proxy.split(":")
    conns = []
    gate = asyncio.Semaphore(500)
    failures = 0

    async def one():
        nonlocal failures
        async with gate:
            try:
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(request_bytes(args.url))
                await writer.drain()
                await read_response(reader)
                conns.append((reader, writer))
            except (OSError, ConnectionError, ValueError):
                failures += 1

    await asyncio.gather(*(one() for _ in range(args.count)))
    print(json.dumps({"open": len(conns), "failed": failures}), flush=True)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write(str(len(conns)))
    await asyncio.sleep(args.hold)


async def burst(args):
    raise_fd_limit()
    host, port = args.proxy.split(":")
    connected = []
    for _ in range(args.count):
        connected.append(await asyncio.open_connection(host, int(port)))
    start = asyncio.Event()

    async def one(reader, writer):
        await start.wait()
        writer.write(request_bytes(args.url))
        await writer.drain()
        status, _, length = await read_response(reader)
        writer.close()
        return status == 200 and length == args.expect_bytes

    tasks = [asyncio.create_task(one(r, w)) for r, w in connected]
    await asyncio.sleep(0.1)
    start.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    ok = sum(1 for r in results if r is True)
    print(json.dumps({"sent": args.count, "complete": ok}), flush=True)


async def warm(args):
    raise_fd_limit()
    host, port = args.proxy.split(":")
    queue = asyncio.Queue()
    for i in range(1, args.count + 1):
        queue.put_nowait(f"{args.base}{i}")
    ok = 0
    started = time.monotonic()

    async def worker():
        nonlocal ok
        reader, writer = await asyncio.open_connection(host, int(port))
        while not queue.empty():
            url = queue.get_nowait()
            writer.write(request_bytes(url))
            await writer.drain()
            status, headers, _ = await read_response(reader)
            ok += status == 200
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, int(port))
        writer.close()

    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    print(json.dumps({"ok": ok, "seconds": round(time.monotonic() - started, 2)}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    i = sub.add_parser("idle")
    i.add_argument("--proxy", required=True)
    i.add_argument("--url", required=True)
    i.add_argument("--count", type=int, default=10000)
    i.add_argument("--hold", type=float, default=30)
    i.add_argument("--ready")
    b = sub.add_parser("burst")
    b.add_argument("--proxy", required=True)
    b.add_argument("--url", required=True)
    b.add_argument("--count", type=int, default=200)
    b.add_argument("--expect-bytes", type=int, required=True)
    w = sub.add_parser("warm")
    w.add_argument("--proxy", required=True)
    w.add_argument("--base", required=True)
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--concurrency", type=int, default=64)
    args = p.parse_args()
    asyncio.run({"idle": idle, "burst": burst, "warm": warm}[args.cmd](args))


if __name__ == "__main__":
    sys.exit(main())
