"""Workers in other processes and hosts, one scheduler enforced by a lease.

Everything meets in the store (no new network server): see
:mod:`~riaktq_py.workers.coordination` for the contract,
:mod:`~riaktq_py.workers.sqlite_coordination` for its SQLite tables,
:mod:`~riaktq_py.workers.worker` for the worker process,
:mod:`~riaktq_py.workers.remote` for how the scheduler sees remote instances,
:mod:`~riaktq_py.workers.lease` and :mod:`~riaktq_py.workers.service` for the
one scheduler that ticks; :mod:`~riaktq_py.workers._embedded` for how an embedded
:class:`~riaktq_py.Riaktq` (and ``riaktq serve``) joins all of this on a shared
SQLite file (:class:`CoordinationConfig`).
"""

from riaktq_py.workers._embedded import CoordinationConfig
from riaktq_py.workers.coordination import (
    SCHEDULER_LEASE,
    Coordination,
    InstanceRecord,
    LeaseLost,
    LeaseRecord,
    Mailbox,
)
from riaktq_py.workers.late import RecordLate
from riaktq_py.workers.lease import Lease, LeaseConfig
from riaktq_py.workers.remote import RemoteFleet, RemoteInstance
from riaktq_py.workers.service import SchedulerService, ServiceConfig
from riaktq_py.workers.sqlite_coordination import FencedSqliteStore, SqliteCoordination
from riaktq_py.workers.worker import Worker, WorkerConfig

__all__ = [
    "SCHEDULER_LEASE",
    "Coordination",
    "CoordinationConfig",
    "FencedSqliteStore",
    "InstanceRecord",
    "Lease",
    "LeaseConfig",
    "LeaseLost",
    "LeaseRecord",
    "Mailbox",
    "RecordLate",
    "RemoteFleet",
    "RemoteInstance",
    "SchedulerService",
    "ServiceConfig",
    "SqliteCoordination",
    "Worker",
    "WorkerConfig",
]
