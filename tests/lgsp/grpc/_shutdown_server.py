"""A platform server in its own process, for the SIGTERM test: `python -m ... GRACE`.

Prints {"port": N} when serving, logs JSON to stdout, and prints "on_shutdown ran" from its
shutdown callback, so the test can check the order of events on one stream.
"""

from __future__ import annotations

import asyncio
import json
import sys

from lgsp.grpc import build_server, serve_until_signal
from lgsp.logs import setup_logging
from tests.lgsp.grpc._support import TestServicer, add_test_service


async def main(grace: float) -> None:
    setup_logging("shutdown-test", json=True, stream=sys.stdout)
    server = build_server("shutdown-test", servicers=[(add_test_service, TestServicer())])
    await server.start()
    print(json.dumps({"port": server.port}), flush=True)

    async def commit_offsets() -> None:
        print("on_shutdown ran", flush=True)

    async def failing_callback() -> None:
        raise RuntimeError("a broken callback must not stop the next ones")

    await serve_until_signal(server, on_shutdown=[failing_callback, commit_offsets], grace=grace)
    print("exited", flush=True)


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1])))
