"""Riak map data type operations over a :class:`~.connection.Pool`.

Fetch with context, update with context (register set, set add/remove,
counter increment, flag enable/disable, field removal), delete, ping and
search (Yokozuna). Quorum options ``r``, ``pr``, ``w``, ``pw`` (and ``dw``)
are configurable; riaktq's defaults are ``pr`` and ``pw`` = quorum. Every
request carries Riak's own ``timeout`` (ms) as well as the socket timeout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from riaktq_py.errors import ConfigError, StoreError
from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.connection import Pool

QuorumValue = int | str | None


def _quorum(name: str, value: QuorumValue) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in pb.QUORUM_VALUES:
            raise ConfigError(
                f"riak {name} must be an integer or one of"
                f" {sorted(pb.QUORUM_VALUES)}, got {value!r}"
            )
        return pb.QUORUM_VALUES[value]
    if value < 1:
        raise ConfigError(f"riak {name} must be >= 1, got {value}")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class Quorum:
    """Read and write quorums; ``None`` leaves the bucket's setting."""

    r: QuorumValue = None
    pr: QuorumValue = "quorum"
    w: QuorumValue = None
    pw: QuorumValue = "quorum"
    dw: QuorumValue = None

    def __post_init__(self) -> None:
        for name in ("r", "pr", "w", "pw", "dw"):
            _quorum(name, getattr(self, name))

    def options(self, *names: str) -> dict[str, int]:
        values = {name: _quorum(name, getattr(self, name)) for name in names}
        return {name: value for name, value in values.items() if value is not None}


@dataclasses.dataclass(frozen=True, slots=True)
class MapValue:
    """A fetched map: its opaque context and its fields by type."""

    context: bytes = b""
    registers: dict[str, bytes] = dataclasses.field(default_factory=dict)
    sets: dict[str, frozenset[bytes]] = dataclasses.field(default_factory=dict)
    counters: dict[str, int] = dataclasses.field(default_factory=dict)
    flags: dict[str, bool] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[Any], context: bytes = b"") -> MapValue:
        """Read ``MapEntry`` messages (nested maps are not used and are skipped)."""
        value = cls(context)
        for entry in entries:
            name = entry.field.name.decode("utf-8")
            kind = entry.field.type
            if kind == pb.REGISTER:
                value.registers[name] = bytes(entry.register_value)
            elif kind == pb.SET:
                value.sets[name] = frozenset(bytes(v) for v in entry.set_value)
            elif kind == pb.COUNTER:
                value.counters[name] = int(entry.counter_value)
            elif kind == pb.FLAG:
                value.flags[name] = bool(entry.flag_value)
        return value

    def is_empty(self) -> bool:
        return not (self.registers or self.sets or self.counters or self.flags)


class MapOps:
    """A batch of field operations on one map, sent as one ``MapOp``."""

    def __init__(self) -> None:
        self._updates: dict[tuple[str, int], Any] = {}
        self._removes: list[tuple[str, int]] = []

    def _update(self, name: str, kind: int) -> Any:
        key = (name, kind)
        if key not in self._updates:
            self._updates[key] = pb.MapUpdate(field=pb.MapField(name=name.encode(), type=kind))
        return self._updates[key]

    def set_register(self, name: str, value: bytes) -> MapOps:
        self._update(name, pb.REGISTER).register_op = value
        return self

    def add(self, name: str, elements: Iterable[bytes]) -> MapOps:
        elements = list(elements)
        if elements:
            self._update(name, pb.SET).set_op.adds.extend(elements)
        return self

    def discard(self, name: str, elements: Iterable[bytes]) -> MapOps:
        """Remove set elements (Riak wants the context of a fetch for this)."""
        elements = list(elements)
        if elements:
            self._update(name, pb.SET).set_op.removes.extend(elements)
        return self

    def increment(self, name: str, by: int = 1) -> MapOps:
        self._update(name, pb.COUNTER).counter_op.increment = by
        return self

    def flag(self, name: str, enabled: bool) -> MapOps:
        self._update(name, pb.FLAG).flag_op = pb.ENABLE if enabled else pb.DISABLE
        return self

    def remove(self, name: str, kind: int) -> MapOps:
        """Remove a whole field (needs a context)."""
        self._removes.append((name, kind))
        return self

    @property
    def needs_context(self) -> bool:
        return bool(self._removes) or any(
            u.HasField("set_op") and u.set_op.removes for u in self._updates.values()
        )

    def __bool__(self) -> bool:
        return bool(self._updates or self._removes)

    def registers(self) -> dict[str, bytes]:
        """The register values this batch sets (for inspection and tests)."""
        return {
            name: bytes(u.register_op)
            for (name, kind), u in self._updates.items()
            if kind == pb.REGISTER
        }

    def to_pb(self) -> Any:
        return pb.MapOp(
            removes=[pb.MapField(name=n.encode(), type=k) for n, k in self._removes],
            updates=list(self._updates.values()),
        )


class RiakClient:
    """Map operations on one bucket type."""

    def __init__(
        self, pool: Pool, bucket_type: str, *, quorum: Quorum | None = None
    ) -> None:
        self.pool = pool
        self.bucket_type = bucket_type
        self.quorum = quorum or Quorum()
        self._timeout_ms = max(1, int(pool.timeout * 1000))

    def ping(self) -> None:
        self.pool.request("ping", pb.PING_REQ, b"", pb.PING_RESP)

    def fetch(self, bucket: str, key: str) -> MapValue | None:
        """The map under ``key`` with its context, or ``None`` when not found."""
        request = pb.DtFetchReq(
            bucket=bucket.encode(), key=key.encode(), type=self.bucket_type.encode(),
            timeout=self._timeout_ms, include_context=True, **self.quorum.options("r", "pr"),
        )
        body = self._call(f"fetch {bucket}/{key}", pb.DT_FETCH_REQ, request, pb.DT_FETCH_RESP)
        reply = _parse(pb.DtFetchResp, body, f"fetch {bucket}/{key}")
        if not reply.HasField("value"):
            return None
        if reply.type != pb.DT_MAP:
            raise StoreError(f"riak: fetch {bucket}/{key}: not a map (data type {reply.type})")
        return MapValue.from_entries(reply.value.map_value, bytes(reply.context))

    def update(
        self, bucket: str, key: str, ops: MapOps, *, context: bytes | None = None,
        return_body: bool = False,
    ) -> MapValue | None:
        """Apply ``ops`` to the map under ``key``; the new value if ``return_body``."""
        what = f"update {bucket}/{key}"
        if ops.needs_context and not context:
            raise StoreError(f"riak: {what}: removing needs the context of a fetch")
        request = pb.DtUpdateReq(
            bucket=bucket.encode(), key=key.encode(), type=self.bucket_type.encode(),
            op=pb.DtOp(map_op=ops.to_pb()), return_body=return_body,
            timeout=self._timeout_ms, **self.quorum.options("w", "pw", "dw"),
        )
        if context:
            request.context = context
        body = self._call(what, pb.DT_UPDATE_REQ, request, pb.DT_UPDATE_RESP)
        if not return_body:
            return None
        reply = _parse(pb.DtUpdateResp, body, what)
        return MapValue.from_entries(reply.map_value, bytes(reply.context))

    def delete(self, bucket: str, key: str) -> None:
        request = pb.RpbDelReq(
            bucket=bucket.encode(), key=key.encode(), type=self.bucket_type.encode(),
            timeout=self._timeout_ms, **self.quorum.options("r", "pr", "w", "pw", "dw"),
        )
        self._call(f"delete {bucket}/{key}", pb.DEL_REQ, request, pb.DEL_RESP)

    def search(
        self, index: str, q: str, *, filter: str | None = None, sort: str | None = None,
        start: int = 0, rows: int = 100, fl: Iterable[str] = (),
    ) -> tuple[list[dict[str, bytes]], int]:
        """Yokozuna search: the documents (field -> first value) and ``num_found``."""
        request = pb.RpbSearchQueryReq(
            q=q.encode(), index=index.encode(), start=start, rows=rows,
            fl=[f.encode() for f in fl],
        )
        if filter:
            request.filter = filter.encode()
        if sort:
            request.sort = sort.encode()
        what = f"search {index} {filter or q}"
        body = self._call(what, pb.SEARCH_QUERY_REQ, request, pb.SEARCH_QUERY_RESP)
        reply = _parse(pb.RpbSearchQueryResp, body, what)
        docs = []
        for doc in reply.docs:
            fields: dict[str, bytes] = {}
            for pair in doc.fields:
                fields.setdefault(pair.key.decode("utf-8"), bytes(pair.value))
            docs.append(fields)
        return docs, int(reply.num_found)

    def _call(self, what: str, code: int, request: Any, expect: int) -> bytes:
        return self.pool.request(what, code, request.SerializeToString(), expect)

    def close(self) -> None:
        self.pool.close()


def _parse(cls: Any, body: bytes, what: str) -> Any:
    message = cls()
    try:
        message.ParseFromString(body)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise StoreError(f"riak: {what}: undecodable reply: {exc}") from exc
    return message
