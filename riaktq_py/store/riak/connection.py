"""Riak's protocol-buffers transport: framing, a connection pool, failover.

A frame is a 4-byte big-endian length, one message-code byte, then the
protobuf body; the length counts the code byte plus the body.

:class:`Pool` keeps up to ``size`` connections per node. Every request has a
timeout (the socket's, for connect, send and receive). A request waits at most
``acquire_timeout`` (default: ``timeout``) for a free connection. A connection that
fails (dropped, reset, timed out) is closed and never reused; the request is
retried once on a fresh connection to the same node (a pooled connection may
have been closed by a restarted node), then on the next node, in order, until
every node was tried. The node that answered last is tried first next time.

Retrying a request that failed mid-way may apply it twice: map register sets,
set adds and removes and deletes are idempotent; a counter increment is not
(the store only uses one for log positions, where a gap is harmless).

Errors: socket errors become :class:`~riaktq_py.errors.StoreUnavailable`;
a Riak error reply (code 0) becomes :class:`~riaktq_py.errors.StoreError`
(``StoreUnavailable`` for the transient ones: timeouts, overload, too few
replicas). Both name the node and the operation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import struct
import threading
from collections.abc import Sequence

from riaktq_py.errors import ConfigError, StoreError, StoreUnavailable
from riaktq_py.store.riak import messages

_HEADER = struct.Struct(">IB")
_MAX_FRAME = 512 * 1024 * 1024
#: Error replies that mean "try again later" rather than "this request is wrong".
_TRANSIENT = ("timeout", "overload", "insufficient_vnodes", "val_unsatisfied", "all_nodes_down")


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """One Riak node's protocol-buffers endpoint."""

    host: str
    port: int = 8087

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


class _Dropped(Exception):
    """The connection failed; it must not be reused."""


class Connection:
    """One TCP connection to one node. Not thread-safe: the pool hands it out."""

    def __init__(self, node: Node, timeout: float) -> None:
        self.node = node
        try:
            self._sock = socket.create_connection((node.host, node.port), timeout=timeout)
        except OSError as exc:
            raise _Dropped(f"cannot connect: {exc}") from exc
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, code: int, body: bytes, timeout: float) -> tuple[int, bytes]:
        """Send one frame and read the reply frame."""
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(_HEADER.pack(len(body) + 1, code) + body)
            length, reply_code = _HEADER.unpack(self._read(_HEADER.size))
            if length < 1 or length > _MAX_FRAME:
                raise _Dropped(f"bad frame length {length}")
            return reply_code, self._read(length - 1)
        except TimeoutError as exc:
            raise _Dropped(f"timed out after {timeout}s") from exc
        except OSError as exc:
            raise _Dropped(str(exc) or type(exc).__name__) from exc

    def _read(self, size: int) -> bytes:
        chunks: list[bytes] = []
        while size:
            chunk = self._sock.recv(min(size, 1 << 20))
            if not chunk:
                raise _Dropped("connection closed by the node")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()


class _NodePool:
    def __init__(self, node: Node, size: int) -> None:
        self.node = node
        self.idle: list[Connection] = []
        self.slots = threading.BoundedSemaphore(size)


class Pool:
    """Connections to several nodes, ``size`` at most per node, with failover."""

    def __init__(
        self,
        nodes: Sequence[Node],
        *,
        size: int = 4,
        timeout: float = 5.0,
        connect_timeout: float | None = None,
        acquire_timeout: float | None = None,
    ) -> None:
        if not nodes:
            raise ConfigError("riak: at least one node is needed")
        if size < 1:
            raise ConfigError(f"riak pool size must be >= 1, got {size}")
        if timeout <= 0:
            raise ConfigError(f"riak timeout must be > 0 seconds, got {timeout}")
        self.nodes = tuple(nodes)
        self.size = size
        self.timeout = timeout
        self.connect_timeout = connect_timeout if connect_timeout is not None else timeout
        self.acquire_timeout = acquire_timeout if acquire_timeout is not None else timeout
        self._pools = [_NodePool(node, size) for node in self.nodes]
        self._lock = threading.Lock()
        self._current = 0
        self._closed = False

    def __repr__(self) -> str:
        return f"Pool({', '.join(map(str, self.nodes))}, size={self.size})"

    def request(self, op: str, code: int, body: bytes, expect: int) -> bytes:
        """Send a request, fail over across nodes; the body of the ``expect`` reply."""
        if self._closed:
            raise StoreError(f"riak: {op}: the connection pool is closed")
        failures: list[str] = []
        with self._lock:
            start = self._current
        for step in range(len(self._pools)):
            index = (start + step) % len(self._pools)
            pool = self._pools[index]
            try:
                reply_code, reply = self._on_node(pool, code, body)
            except _Dropped as exc:
                failures.append(f"{pool.node}: {exc}")
                continue
            with self._lock:
                self._current = index
            return _check(pool.node, op, expect, reply_code, reply)
        raise StoreUnavailable(f"riak: {op} failed on every node: {'; '.join(failures)}")

    def _on_node(self, pool: _NodePool, code: int, body: bytes) -> tuple[int, bytes]:
        if not pool.slots.acquire(timeout=self.acquire_timeout):
            raise _Dropped(
                f"no free connection within {self.acquire_timeout}s (pool size {self.size})"
            )
        try:
            for attempt in range(2):
                connection, reused = self._checkout(pool)
                try:
                    result = connection.request(code, body, self.timeout)
                except _Dropped:
                    connection.close()
                    if reused and attempt == 0:
                        continue  # a stale pooled connection: reconnect once
                    raise
                with self._lock:
                    if self._closed:
                        connection.close()
                    else:
                        pool.idle.append(connection)
                return result
            raise AssertionError("unreachable")
        finally:
            pool.slots.release()

    def _checkout(self, pool: _NodePool) -> tuple[Connection, bool]:
        with self._lock:
            if pool.idle:
                return pool.idle.pop(), True
        return Connection(pool.node, self.connect_timeout), False

    def idle_connections(self) -> int:
        """How many connections wait in the pool (for tests and metrics)."""
        with self._lock:
            return sum(len(p.idle) for p in self._pools)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for p in self._pools for c in p.idle]
            for p in self._pools:
                p.idle.clear()
        for connection in idle:
            connection.close()


def _check(node: Node, op: str, expect: int, code: int, body: bytes) -> bytes:
    if code == expect:
        return body
    if code == messages.ERROR_RESP:
        error = messages.RpbErrorResp()
        try:
            error.ParseFromString(body)
            text = error.errmsg.decode("utf-8", "replace")
            errcode = error.errcode
        except Exception:  # a malformed error reply is still an error
            text, errcode = body.decode("utf-8", "replace"), 0
        message = f"riak {node}: {op}: error reply: {text} (errcode {errcode})"
        if any(word in text for word in _TRANSIENT):
            raise StoreUnavailable(message)
        raise StoreError(message)
    raise StoreError(f"riak {node}: {op}: unexpected reply code {code}, expected {expect}")
