"""How the cluster's processes stop: SIGTERM ends a busy scheduler or worker even where the
code running when it comes catches every exception."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

# The signal comes while the loop runs a callback that swallows everything, as some of
# Dask's comm and task handlers do: an exception raised from a signal handler lands there.
BUSY = """
    import asyncio, sys, time
    from atoll.cluster.processes import stopped_by_sigterm

    async def swallowing() -> None:
        while True:
            try:
                time.sleep(0.01)
            except BaseException:
                pass
            await asyncio.sleep(0)

    async def main() -> None:
        busy = asyncio.create_task(swallowing())
        {block}
        busy.cancel()
        print("stopped", flush=True)

    asyncio.run(main())
"""
NEW = """with stopped_by_sigterm():
        print("ready", flush=True)
        await asyncio.sleep(60)"""


def _run(block: str) -> subprocess.CompletedProcess[str] | None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(BUSY).replace("{block}", block)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_ends_the_served_block_where_a_handler_swallows_exceptions() -> None:
    done = _run(NEW)
    assert done is not None, "SIGTERM did not stop the process"
    assert (done.returncode, done.stdout.strip()) == (0, "stopped"), done.stderr


def test_a_sigterm_before_the_block_is_not_ours_to_catch() -> None:
    # outside the block, the process's own SIGTERM handling is restored
    block = (
        NEW
        + """
    import os, signal
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)"""
    )
    done = _run(block)
    assert done is not None
    assert done.returncode == -signal.SIGTERM
    assert "stopped" not in done.stdout
