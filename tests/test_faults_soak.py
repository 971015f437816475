"""The soak: 10,000 tasks, 3 worker processes killed and restarted at random, 2 schedulers.

Each time another batch of tasks is done, a random worker is killed with
SIGKILL and a fresh one started in its place; once, the scheduler holding the
lease is killed too. At the end every task must be done with exactly one
committed attempt, in the store and in the transition log.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from riaktq_py.store.sqlite import SqliteStore
from riaktq_py.task import Outcome
from tests.test_faults_support import (
    Proc,
    assert_done_exactly_once,
    done,
    open_tasks,
    scheduler,
    wait_until,
    worker,
)

TASKS = int(os.environ.get("RIAKTQ_SOAK_TASKS", "10000"))
WORKERS = 3
KILL_EVERY = TASKS // 12  # tasks done between two kills
DEADLINE = 240.0


def test_soak_every_task_done_exactly_once_while_workers_die(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("RIAKTQ_SOAK_SEED", "6")))
    path = tmp_path / "soak.db"
    store = SqliteStore(str(path))
    keys = [f"t{i:05}" for i in range(TASKS)]
    open_tasks(store, [(k, {"n": i}) for i, k in enumerate(keys)])
    procs: list[Proc] = []
    started = 0

    def start_worker() -> Proc:
        nonlocal started
        started += 1
        proc = worker(path, f"w{started}", "--instances", "2", "--capacity", "16")
        procs.append(proc)
        return proc

    try:
        schedulers = [scheduler(path, name) for name in ("s1", "s2")]
        procs.extend(schedulers)
        live = [start_worker() for _ in range(WORKERS)]
        began = time.monotonic()
        next_kill, scheduler_killed = KILL_EVERY, False
        while (finished := done(store)) < TASKS:
            assert time.monotonic() - began < DEADLINE, f"only {finished}/{TASKS} done"
            if finished >= next_kill:
                victim = live.pop(rng.randrange(len(live)))
                victim.kill()
                live.append(start_worker())
                next_kill += KILL_EVERY
            if not scheduler_killed and finished >= TASKS // 2:
                holder = next(s for s in schedulers if "lease acquired" in s.text("out"))
                holder.kill()
                schedulers.remove(holder)
                scheduler_killed = True
            target = min(next_kill, TASKS)
            wait_until(lambda: done(store) >= target, "progress", timeout=60.0)  # noqa: B023
        assert started - WORKERS >= 8 and scheduler_killed  # the faults did happen
        assert_done_exactly_once(store, keys)
        tasks = store.get_many(keys).values()
        lost = sum(any(a.outcome is Outcome.LOST for a in t.history) for t in tasks)
        assert lost > 0  # killed workers held tasks, which ran again elsewhere
    finally:
        for proc in procs:
            proc.cleanup()
        store.close()
