"""Who pays for a job: the rule, by the status the job ended with.

- **Charged** (delivered compute): the algorithm ran, whatever it made of it. Its own failures
  count here: it failed, hit a limit, was stopped by its consumer, or left an output tree that
  cannot be published (:attr:`JobStatus.OUTPUTS_REJECTED`).
- **Refunded** (the provider's failures): the data or the algorithm could not be provisioned,
  the sandbox could not be made, the provider restarted, the job waited too long in the queue,
  or the provider could not store results it should have. The keeper aborts the agreement's
  compute condition at once, so the escrow goes back to the consumer within seconds, not at
  the agreement's time out.

Only a job that delivered *and* whose outputs were published serves its outputs and logs: a
job the consumer does not pay for serves nothing, and neither does one whose outputs were
rejected (what it printed could otherwise stand in for the outputs it broke).
"""

from __future__ import annotations

from atoll.models.status import TERMINAL, JobStatus

#: ends in which the compute was delivered and is paid for
CHARGED = frozenset(
    {
        JobStatus.FINISHED,
        JobStatus.ALGORITHM_FAILED,
        JobStatus.DISK_QUOTA_EXCEEDED,
        JobStatus.MEMORY_LIMIT_EXCEEDED,
        JobStatus.TIME_LIMIT_EXCEEDED,
        JobStatus.STOPPED,
        JobStatus.OUTPUTS_REJECTED,
        # shown instead of FINISHED while a reviewer decides: the compute was delivered
        JobStatus.AWAITING_REVIEW,
    }
)

#: ends that are the provider's failures: refunded at once
REFUNDED = TERMINAL - CHARGED

#: ends whose outputs and logs the consumer may fetch
SERVED = CHARGED - {JobStatus.OUTPUTS_REJECTED}


def charged(status: int) -> bool:
    return status in CHARGED


def served(status: int) -> bool:
    """Whether an ended job's outputs and logs may be served."""
    return status in SERVED
