"""Transfers per second from concurrent coroutines through ``AsyncTally``, with and without
batching: each coroutine makes single transfers one after another, as request handlers do.

    python3 bench/python-batching.py target/release/tally 32 200

Needs the client installed (``pip install ./clients/python``). Starts its own server on a
free port and a temporary data directory; runs alternate without and with batching.
"""

from __future__ import annotations

import asyncio
import sys
import time

from tally_ledger import AsyncTally
from tally_ledger.testing import TallyServer


async def run(url: str, batching: bool, coroutines: int, each: int, tag: str) -> tuple[float, list[float]]:
    async with AsyncTally(url, batching=batching, timeout=60) as client:
        await client.create_asset(f"{tag}USD", 2)
        await client.create_account(f"{tag}world", f"{tag}USD", min_balance=None)
        for index in range(coroutines):
            await client.create_account(f"{tag}user{index}", f"{tag}USD")
        latencies: list[float] = []

        async def payer(index: int) -> None:
            for n in range(each):
                started = time.perf_counter()
                await client.transfer(f"{tag}t{index}-{n}", f"{tag}world", f"{tag}user{index}", "1.00")
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(payer(index) for index in range(coroutines)))
        return coroutines * each / (time.perf_counter() - started), sorted(latencies)


def main() -> None:
    binary, coroutines, each = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    with TallyServer(binary) as server:
        for round_ in range(rounds):
            for batching in (False, True):
                rate, latencies = asyncio.run(run(server.url, batching, coroutines, each, f"r{round_}{int(batching)}-"))
                p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
                print(f"batching={batching!s:5} {coroutines} coroutines: {rate:9.0f} transfers/s, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")


if __name__ == "__main__":
    main()
