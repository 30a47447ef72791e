"""A connection round-robin TCP proxy on loopback, as kube-proxy balances a Service.

kube-proxy (IPVS ``rr``, or iptables' random choice) picks a backend per TCP connection, not per
HTTP request: every request on a keep-alive connection goes to the pod that connection was given.
This proxy does the same, so a load test through it sees what clients of a Service see (including
that the spread is only as even as the connections are). It relays bytes and never parses HTTP.
asyncio, standard library only; run in its own process so that its CPU time is measured apart.

Usage:
    python scripts/_roundrobin.py --port PORT --backend 127.0.0.1:P1 --backend 127.0.0.1:P2 ...
It prints ``ready`` once listening; on SIGTERM/SIGINT it prints the connections per backend as
one JSON line and exits 0. A port it cannot listen on (taken, out of range) is one line on stderr,
exit 2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import sys


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def serve(port: int, backends: list[tuple[str, int]]) -> dict[str, int]:
    counts = {f"{h}:{p}": 0 for h, p in backends}
    turn = itertools.cycle(backends)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        host, bport = next(turn)
        counts[f"{host}:{bport}"] += 1
        try:
            backend_reader, backend_writer = await asyncio.open_connection(host, bport)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, backend_writer), _pipe(backend_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="_roundrobin.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", required=True)
    p.add_argument("--backend", action="append", required=True, help="HOST:PORT on loopback (repeatable)")
    args = p.parse_args(argv)
    backends = []
    for item in args.backend:
        host, _, port = item.rpartition(":")
        if host not in ("127.0.0.1", "localhost") or not port.isdigit():
            p.error(f"--backend must be 127.0.0.1:PORT (loopback only), got {item!r}")
        backends.append((host, int(port)))
    if not args.port.isdigit() or not 1 <= int(args.port) <= 65535:
        print(f"_roundrobin.py: --port must be a whole number from 1 to 65535, got {args.port!r}", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(serve(int(args.port), backends))
    except OSError as exc:  # taken, or not ours to bind
        print(f"_roundrobin.py: --port {args.port}: cannot listen on 127.0.0.1 ({exc.strerror or exc})",
              file=sys.stderr)
        return 2
    print(json.dumps({"connections": counts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
