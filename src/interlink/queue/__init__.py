"""The durable work queue: jobs written in the caller's transaction, claimed under a lease.

Owns the ``jobs`` table. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` and wakes workers
with LISTEN/NOTIFY; SQLite claims the same way under its single writer lock and wakes the
in-process worker directly. Imports only the store.
"""

from interlink.queue.jobs import Job, JobQueue, JobStatus, LeaseLost
from interlink.queue.worker import (
    BatchContext,
    BatchHandler,
    HourlyWork,
    JobContext,
    JobHandler,
    PermanentJobError,
    RetryJob,
    Worker,
    hourly_handler,
)

__all__ = [
    "BatchContext",
    "BatchHandler",
    "HourlyWork",
    "Job",
    "JobContext",
    "JobHandler",
    "JobQueue",
    "JobStatus",
    "LeaseLost",
    "PermanentJobError",
    "RetryJob",
    "Worker",
    "hourly_handler",
]
