"""The cluster's processes: SIGTERM ends a busy scheduler or worker even where the code
running when it comes catches every exception; the scheduler and the operator send what they
have as it comes, not in Dask's timed batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from distributed import Client, Scheduler, Worker

from atoll.cluster.executor import DaskExecutor
from atoll.cluster.processes import (
    HTTP_ADDRESS,
    FewerHandshakeWarnings,
    PromptStreams,
    worker_cgroup_name,
)
from atoll.engine.executor import Runtime
from atoll.engine.sandbox.claim import TAKEN
from tests.engine.conftest import PYTHON
from tests.engine.executor_conformance import LIMITS, ExecutorConformance, Log

from .conftest import Cluster, atoll, free_port

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


def test_the_scheduler_sends_to_clients_and_workers_as_messages_come() -> None:
    async def main() -> tuple[float, list[float]]:
        async with Scheduler(
            host="127.0.0.1", port=0, dashboard=False, dashboard_address=HTTP_ADDRESS
        ) as scheduler:
            scheduler.add_plugin(PromptStreams())
            async with (
                Worker(
                    scheduler.address,
                    host="127.0.0.1",
                    dashboard=False,
                    dashboard_address=HTTP_ADDRESS,
                ) as worker,
                Client(scheduler.address, asynchronous=True) as client,
            ):
                await client.submit(abs, -1, pure=False)
                await asyncio.sleep(0)  # the client's stream is made just after its hook
                to_worker = scheduler.stream_comms[worker.address].interval
                return to_worker, [s.interval for s in scheduler.client_comms.values()]

    to_worker, to_clients = asyncio.run(main())
    assert to_worker == 0
    assert to_clients == [0]


def test_the_operator_sends_to_the_scheduler_as_messages_come(
    dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    spec = ExecutorConformance().spec(tmp_path, Runtime(PYTHON), "pass", limits=LIMITS)
    execution = dask_executor.start(spec, Log())
    try:
        execution.wait()
    finally:
        execution.release()
    comm = dask_executor.client.scheduler_comm
    assert comm is not None
    assert comm.interval == 0


# -- a worker's name on its host ----------------------------------------------------------------

#: runs until the test writes ``go`` into its outputs, then ends well
WAITS = """
import os, time
print('started', flush=True)
while not os.path.exists('/data/outputs/go'):
    time.sleep(0.05)
open('/data/outputs/result.txt', 'w').write('done')
"""


def test_a_second_worker_of_the_same_name_refuses_to_start_and_leaves_the_first_s_jobs(
    cluster: Cluster, dask_executor: DaskExecutor, tmp_path: Path
) -> None:
    """Starting ``atoll worker`` twice with one name on a host (the host's name, by default)
    clears that name's leftovers on its way up: it must refuse instead, as the first's jobs
    are no leftovers."""
    conformance = ExecutorConformance()
    spec = conformance.spec(tmp_path, Runtime(PYTHON), WAITS)
    log = Log()
    execution = dask_executor.start(spec, log)
    try:
        assert log.wait_for(b"started")
        workers = dask_executor.client.scheduler_info(n_workers=-1)["workers"]
        name = workers[execution.worker]["name"]
        done = atoll(
            cluster.home,
            *("worker", "--scheduler", cluster.address, "--certs", str(cluster.certs)),
            *("--name", name),
        )
        # the first worker's job still runs, and ends as it should
        (spec.outputs_dir / "go").write_text("")
        result = execution.wait()
        assert result.exit_code == 0, log.data
        assert (spec.outputs_dir / "result.txt").read_text() == "done"
        assert cluster.workers[name].poll() is None
        assert done.returncode == 1, done.stderr
        assert done.stderr.strip().splitlines()[-1] == f"error: this node cannot run jobs: {TAKEN}"
    finally:
        execution.release()


def test_names_a_cgroup_cannot_hold_whole_still_get_cgroups_of_their_own() -> None:
    long_a, long_b = "w" * 100 + "a", "w" * 100 + "b"
    names = {worker_cgroup_name(n) for n in (long_a, long_b, "node-1", "node_1")}
    assert len(names) == 4
    assert worker_cgroup_name("node-1") == "atoll-dask-node-1"
    assert all(len(n) < 100 for n in names)


# -- failed handshakes in the log ---------------------------------------------------------------


def _record(msg: str) -> logging.LogRecord:
    return logging.LogRecord("distributed.comm.tcp", logging.WARNING, "", 0, msg, (), None)


def test_one_handshake_warning_per_period_the_next_counting_those_held_back() -> None:
    now = [0.0]
    quiet = FewerHandshakeWarnings(period=60, clock=lambda: now[0])
    failed = "Listener on %r: TLS handshake failed with remote %r: %s"
    assert quiet.filter(_record(failed))
    assert [quiet.filter(_record(failed)) for _ in range(500)] == [False] * 500
    assert quiet.filter(_record("another warning"))  # anything else passes
    now[0] = 61.0
    record = _record(failed)
    assert quiet.filter(record)
    assert record.msg.endswith("(500 more failed handshakes in the last 60 s)")


def test_a_stranger_s_failed_handshakes_do_not_fill_the_scheduler_s_log(
    cluster: Cluster, tmp_path: Path
) -> None:
    own = Cluster(f"tls://127.0.0.1:{free_port()}", cluster.certs, cluster.home, {})
    port = int(own.address.rsplit(":", 1)[1])
    log_file = tmp_path / "scheduler.log"
    with log_file.open("wb") as err:
        scheduler = subprocess.Popen(
            [
                *(sys.executable, "-m", "atoll", "cluster", "scheduler"),
                *("--certs", str(own.certs), "--port", str(port)),
            ],
            env=own.env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        own.wait_for_workers(0)
        # a stranger without the cluster's certificate, over and over
        stranger = ssl.create_default_context()
        stranger.check_hostname = False
        stranger.verify_mode = ssl.CERT_NONE
        for _ in range(100):
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
                contextlib.suppress(OSError),
                stranger.wrap_socket(sock) as tls,
            ):
                tls.recv(1)
        time.sleep(0.5)
    finally:
        scheduler.terminate()
        scheduler.wait(30)
    failed = [line for line in log_file.read_text().splitlines() if "handshake failed" in line]
    assert 1 <= len(failed) <= 2, failed
