"""A worker's log never shows a job's payload: it may hold a URL or S3 source's location and
the publisher's keys. Dask logs a failed task with the start of its arguments; the worker's
filter takes them out."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from atoll.cluster.wire import dump_spec, load_extra
from atoll.cluster.worker import quiet_task_arguments
from atoll.engine.executor import ExecutionSpec, Runtime

SECRET = 'remote:{"keys":["AKIA","very-secret",""]}'


def test_a_failed_tasks_arguments_stay_out_of_the_workers_log() -> None:
    spec = ExecutionSpec(
        job_id="j",
        runtime=Runtime(Path("/usr/bin/python3")),
        args=[],
        mounts=[],
        env={},
        outputs_dir=Path("/o"),
        logs_dir=Path("/l"),
    )
    payload = dump_spec(spec, {"fetch": [{"location": SECRET}]})
    assert load_extra(payload) == {"fetch": [{"location": SECRET}]}
    logger = logging.getLogger("distributed.worker")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        quiet_task_arguments()
        quiet_task_arguments()  # once is enough, whatever the number of plugins
        # as distributed.worker logs it
        logger.error(
            "Compute Failed\nKey:       %s\nState:     %s\nTask:  %s\nException: %r\n"
            "Traceback: %r\n",
            "atoll-job-dask/job-j",
            "executing",
            repr(("run_job", payload))[:1000],
            "ValueError()",
            "",
        )
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert "Compute Failed" in text and "atoll-job-dask/job-j" in text
    assert "very-secret" not in text and "AKIA" not in text
