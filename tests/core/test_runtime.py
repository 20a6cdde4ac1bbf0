"""The entry points' runtime: the heap settled after start-up, the loop on uvloop. Run in a
child process, since what ``settle_heap`` freezes stays frozen for the process's life."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _child(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_what_start_up_built_is_out_of_the_collectors_sight():
    out = _child(
        """
        import gc
        import api.app  # what the API imports before it serves
        from core.runtime import YOUNG_COLLECTION_EVERY, settle_heap
        before = gc.get_freeze_count()
        settle_heap()
        print(before, gc.get_freeze_count(), gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY)
        """
    )
    before, frozen, threshold = out.split()
    assert int(frozen) > int(before) + 100_000, out
    assert threshold == "True"


def test_the_worker_loop_is_uvloop():
    out = _child(
        """
        import asyncio
        from core.runtime import run
        async def main():
            print(type(asyncio.get_running_loop()).__module__)
        run(main)
        """
    )
    assert out.startswith("uvloop"), out
