"""Queries through a Yokozuna (Solr) index: riaktq's set-up on Riak 2.x.

riaktq's schema indexes ``status_register``, ``priority_register``,
``cat_register``, ``assignee_register`` and ``tags_set`` (plus Riak's
``_yz_rk`` key, ``_yz_rb`` bucket). Queries are filter queries (``fq``) of
clauses joined by ``AND``; every value is backslash-escaped. Solr is near
real time (about a second behind writes), so every task a search names is
fetched and checked again before it is returned.

Tag routing (task tags a subset of the instance's) cannot be said in a
filter without knowing every tag, so it is checked on the fetched tasks.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

from riaktq_py.store.base import TaskQuery
from riaktq_py.store.riak.maps import RiakClient
from riaktq_py.task import Status, Task

FetchMany = Callable[[Sequence[str]], dict[str, Task]]
TODO_SORT = "priority_register desc,cat_register asc,_yz_rk asc"
KEY_SORT = "_yz_rk asc"


def escape(value: str) -> str:
    """Backslash-escape every character that is not a letter or a digit."""
    return "".join(c if c.isalnum() and c.isascii() else "\\" + c for c in value)


def clauses(bucket: str, query: TaskQuery) -> list[str]:
    found = [f"_yz_rb:{escape(bucket)}"]
    if query.status is not None:
        found.append(f"status_register:{query.status.value}")
    if query.created_before is not None or query.created_after is not None:
        low = "*" if query.created_after is None else str(query.created_after)
        high = "*" if query.created_before is None else str(query.created_before - 1)
        found.append(f"cat_register:[{low} TO {high}]")
    if query.priority_min is not None or query.priority_max is not None:
        low = "*" if query.priority_min is None else str(query.priority_min)
        high = "*" if query.priority_max is None else str(query.priority_max)
        found.append(f"priority_register:[{low} TO {high}]")
    if query.assignee is not None:
        found.append(f"assignee_register:{escape(query.assignee)}")
    found += [f"tags_set:{escape(tag)}" for tag in sorted(query.tags or ())]
    return found


class SearchQueries:
    def __init__(
        self, client: RiakClient, index: str, bucket: str, fetch_many: FetchMany, page: int = 200
    ) -> None:
        self.client = client
        self.index = index
        self.bucket = bucket
        self.fetch_many = fetch_many
        self.page = page

    def _keys(self, fq: list[str], sort: str, start: int, rows: int) -> tuple[list[str], int]:
        docs, found = self.client.search(
            self.index,
            "*:*",
            filter=" AND ".join(fq),
            sort=sort,
            start=start,
            rows=rows,
            fl=["_yz_rk"],
        )
        return [d["_yz_rk"].decode("utf-8") for d in docs if "_yz_rk" in d], found

    def todo(self, limit: int, tags: frozenset[str] | None, now: int | None) -> list[Task]:
        """Todo tasks in todo order; tags and due time (``run_at``, not in riaktq's
        schema) are checked on the fetched tasks, before counting toward ``limit``."""
        chosen: list[Task] = []
        fq = clauses(self.bucket, TaskQuery(status=Status.TODO))
        start = 0
        while len(chosen) < limit:
            keys, _ = self._keys(fq, TODO_SORT, start, self.page)
            tasks = self.fetch_many(keys)
            for key in keys:
                task = tasks.get(key)
                if (
                    task is not None
                    and task.status is Status.TODO
                    and (tags is None or task.tags <= tags)
                    and (now is None or task.run_at is None or task.run_at <= now)
                ):
                    chosen.append(task)
            if len(keys) < self.page:
                break
            start += len(keys)
        return chosen[:limit]

    def find(self, query: TaskQuery) -> list[Task]:
        return list(self._matching(query, query.limit))

    def _matching(self, query: TaskQuery, limit: int) -> Iterator[Task]:
        fq = clauses(self.bucket, query)
        after = query.after_key
        given = 0
        while given < limit:
            page_fq = fq if after is None else [*fq, f"_yz_rk:{{{escape(after)} TO *]"]
            keys, _ = self._keys(page_fq, KEY_SORT, 0, self.page)
            tasks = self.fetch_many(keys)
            for key in keys:
                task = tasks.get(key)
                if task is not None and query.matches(task) and given < limit:
                    given += 1
                    yield task
            if len(keys) < self.page:
                return
            after = keys[-1]

    def count(self, query: TaskQuery) -> int:
        _, found = self._keys(clauses(self.bucket, query), KEY_SORT, 0, 0)
        return found

    def restartable(self, limit: int) -> list[Task]:
        failed = TaskQuery(status=Status.FAILED, limit=2**62)
        with_retries = (t for t in self._matching(failed, failed.limit) if t.retry > 0)
        return list(itertools.islice(with_retries, limit))
