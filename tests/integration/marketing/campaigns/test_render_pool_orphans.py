"""A render process never outlives its serving process, even one killed with SIGKILL.

A child Python process starts a ``RenderPool`` of one worker, has the worker report its
pid, prints it and waits; the test kills the child with SIGKILL and waits for the worker
to exit by itself (without the orphan guard it would wait for work forever).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

SCRIPT = """
import asyncio, os
from datetime import UTC, datetime
from courriel.marketing.campaigns.pool import RenderPool

async def main():
    pool = RenderPool(1)
    pool.submit(None, [], datetime.now(UTC))  # no rows: starts the executor only
    print(pool._executor.submit(os.getpid).result(), flush=True)
    await asyncio.sleep(3600)

if __name__ == "__main__":
    asyncio.run(main())
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; init reaps it


def test_a_worker_exits_when_its_serving_process_is_killed() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", SCRIPT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert child.stdout is not None
        worker = int(child.stdout.readline())
        assert worker != child.pid and _alive(worker)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    deadline = time.monotonic() + 15
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the render process outlived its parent"
