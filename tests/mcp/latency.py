"""What a tools/call costs through `paracle mcp serve --stdio`: seen from the
official Python MCP SDK, seen from a bare client that writes JSON lines to a
pipe and reads the answers, and inside the server (the plugin call's own
latency, from `paracle plugin stats`).

    python tests/mcp/latency.py PARACLE_BINARY [CALLS]

Run it from an empty directory: it uses the embedded plugins only.
"""

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def measure(paracle, calls):
    server = StdioServerParameters(
        command=paracle, args=["mcp", "serve", "--stdio"], cwd=os.getcwd(),
        env={k: v for k, v in os.environ.items() if k.startswith("PARACLE_")},
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            arguments = {"text": "the quick brown fox jumps over the lazy dog"}
            for _ in range(20):  # warm the instance and both ends' code
                await session.call_tool("text-tools__count_vowels", arguments)
            times = []
            for _ in range(calls):
                started = time.perf_counter()
                result = await session.call_tool("text-tools__count_vowels", arguments)
                times.append((time.perf_counter() - started) * 1e6)
                assert not result.is_error, result
    return times


def measure_bare(paracle, calls):
    """The same calls with no SDK: what is left is the pipe and the server."""
    process = subprocess.Popen(
        [paracle, "mcp", "serve", "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env=os.environ, text=True, bufsize=1,
    )

    def ask(message):
        process.stdin.write(json.dumps(message) + "\n")
        process.stdin.flush()
        return json.loads(process.stdout.readline()) if "id" in message else None

    ask({"jsonrpc": "2.0", "id": 0, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "bare", "version": "0"}}})
    ask({"jsonrpc": "2.0", "method": "notifications/initialized"})
    call = {"jsonrpc": "2.0", "method": "tools/call",
            "params": {"name": "text-tools__count_vowels",
                       "arguments": {"text": "the quick brown fox jumps over the lazy dog"}}}
    times = []
    for i in range(20 + calls):
        started = time.perf_counter()
        answer = ask({**call, "id": i + 1})
        if i >= 20:
            times.append((time.perf_counter() - started) * 1e6)
        assert answer["result"]["structuredContent"] == {"vowels": 11}, answer
    process.stdin.close()
    process.wait(timeout=30)
    return sorted(times)


def report(what, times):
    print(f"{what}, {len(times)} calls: median {statistics.median(times):.0f} us, "
          f"p90 {times[int(len(times) * 0.9)]:.0f} us, min {times[0]:.0f} us")


def main():
    paracle = sys.argv[1]
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    report("tools/call from the Python SDK", sorted(asyncio.run(measure(paracle, calls))))
    report("tools/call from a bare client", measure_bare(paracle, calls))
    stats = json.loads(
        subprocess.run([paracle, "plugin", "stats", "text-tools", "--json"],
                       check=True, capture_output=True, text=True).stdout
    )["text-tools"]
    print(f"the plugin call inside the server: mean {stats['mean_us']:.0f} us, "
          f"p50 {stats['p50_us']:.0f} us over {stats['calls']} calls")


if __name__ == "__main__":
    main()
