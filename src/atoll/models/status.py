"""Job status codes.

The numbers follow Ocean's operator-engine (1 … 70) so that Ocean tooling reads them unchanged;
ocean-node's additions (2, 41, 42, 61, 62) keep their meaning. Codes 38 and 43-48 are ours: each
failure gets its own code, so that a client can tell an out-of-memory job from a stopped one
without parsing ``statusText``; 38 is a dataset file that no longer holds its published bytes;
48 is a job whose own output tree could not be published
(too deep, names too long, unreadable), as opposed to 62, the provider failing to store
results. 51 is ours too: a job that finished and whose outputs or logs were held by the
disclosure checks until a reviewer decides; the engine never sets it, the provider shows it
instead of 70 while anything is held. The job has ended (it is charged and settled as 70).

Codes 11-16 are a job whose algorithm runs in an image, before it is configured (20), as
ocean-node reports an image pull: 11 while the image is pulled (bytes done and total in the
status text) and unpacked, then one code for each way that ends the job: the registry failed
(12), a layer is hostile or the unpacker refused it (13), the image is too large for its caps
or the cache (14), the image is not one the job may run (15), or the cache is held full by
images in use (16). The status text names the cause; never a registry's credentials or
a host path.
"""

from __future__ import annotations

from enum import IntEnum


class JobStatus(IntEnum):
    """A job's status codes (Ocean's numbers)."""

    QUEUED = 1
    QUEUE_EXPIRED = 2
    STARTED = 10
    PULLING_IMAGE = 11
    IMAGE_PULL_FAILED = 12
    IMAGE_REFUSED = 13
    IMAGE_TOO_LARGE = 14
    IMAGE_NOT_ALLOWED = 15
    IMAGE_CACHE_FULL = 16
    CONFIGURING = 20
    PROVISIONED = 30
    DATA_PROVISIONING_FAILED = 31
    ALGORITHM_PROVISIONING_FAILED = 32
    DATASET_CHANGED = 38
    RUNNING = 40
    ALGORITHM_FAILED = 41
    DISK_QUOTA_EXCEEDED = 42
    MEMORY_LIMIT_EXCEEDED = 43
    TIME_LIMIT_EXCEEDED = 44
    STOPPED = 45
    SANDBOX_UNAVAILABLE = 46
    INTERRUPTED = 47
    OUTPUTS_REJECTED = 48
    FILTERING = 50
    AWAITING_REVIEW = 51
    PUBLISHING = 60
    RESULTS_FETCH_FAILED = 61
    RESULTS_UPLOAD_FAILED = 62
    FINISHED = 70

    @property
    def terminal(self) -> bool:
        return self in TERMINAL

    @property
    def text(self) -> str:
        return STATUS_TEXT[self]


TERMINAL = frozenset(
    {
        JobStatus.QUEUE_EXPIRED,
        JobStatus.IMAGE_PULL_FAILED,
        JobStatus.IMAGE_REFUSED,
        JobStatus.IMAGE_TOO_LARGE,
        JobStatus.IMAGE_NOT_ALLOWED,
        JobStatus.IMAGE_CACHE_FULL,
        JobStatus.DATA_PROVISIONING_FAILED,
        JobStatus.ALGORITHM_PROVISIONING_FAILED,
        JobStatus.DATASET_CHANGED,
        JobStatus.ALGORITHM_FAILED,
        JobStatus.DISK_QUOTA_EXCEEDED,
        JobStatus.MEMORY_LIMIT_EXCEEDED,
        JobStatus.TIME_LIMIT_EXCEEDED,
        JobStatus.STOPPED,
        JobStatus.SANDBOX_UNAVAILABLE,
        JobStatus.INTERRUPTED,
        JobStatus.OUTPUTS_REJECTED,
        JobStatus.AWAITING_REVIEW,
        JobStatus.RESULTS_FETCH_FAILED,
        JobStatus.RESULTS_UPLOAD_FAILED,
        JobStatus.FINISHED,
    }
)

STATUS_TEXT: dict[JobStatus, str] = {
    JobStatus.QUEUED: "Queued",
    JobStatus.QUEUE_EXPIRED: "Queue wait expired",
    JobStatus.STARTED: "Job started",
    JobStatus.PULLING_IMAGE: "Pulling image",
    JobStatus.IMAGE_PULL_FAILED: "Image pull failed",
    JobStatus.IMAGE_REFUSED: "Image refused: a layer is hostile or cannot be unpacked",
    JobStatus.IMAGE_TOO_LARGE: "Image too large",
    JobStatus.IMAGE_NOT_ALLOWED: "Image not allowed for this job",
    JobStatus.IMAGE_CACHE_FULL: "Image cache full of images in use; the job did not run",
    JobStatus.CONFIGURING: "Configuring volumes",
    JobStatus.PROVISIONED: "Provisioning success",
    JobStatus.DATA_PROVISIONING_FAILED: "Data provisioning failed",
    JobStatus.ALGORITHM_PROVISIONING_FAILED: "Algorithm provisioning failed",
    JobStatus.DATASET_CHANGED: "A dataset file changed since it was published; the job did not run",
    JobStatus.RUNNING: "Running algorithm",
    JobStatus.ALGORITHM_FAILED: "Algorithm failed",
    JobStatus.DISK_QUOTA_EXCEEDED: "Output or log size limit exceeded",
    JobStatus.MEMORY_LIMIT_EXCEEDED: "Memory limit exceeded",
    JobStatus.TIME_LIMIT_EXCEEDED: "Time limit exceeded",
    JobStatus.STOPPED: "Stopped by the consumer",
    JobStatus.SANDBOX_UNAVAILABLE: "Sandbox could not be created; the job did not run",
    JobStatus.INTERRUPTED: "Interrupted by a provider restart",
    JobStatus.OUTPUTS_REJECTED: "Outputs rejected: the job's output tree cannot be published",
    JobStatus.FILTERING: "Filtering results",
    JobStatus.AWAITING_REVIEW: "Awaiting review: some outputs or logs are held",
    JobStatus.PUBLISHING: "Publishing results",
    JobStatus.RESULTS_FETCH_FAILED: "Results fetch failed",
    JobStatus.RESULTS_UPLOAD_FAILED: "Results upload failed",
    JobStatus.FINISHED: "Job finished",
}
