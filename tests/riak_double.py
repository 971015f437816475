"""A protocol-level Riak KV double: a TCP server on 127.0.0.1 in a thread.

It speaks Riak's framing and the messages the Riak store uses (ping, map
fetch/update, delete, search) with Riak's map semantics:

* registers: last write wins; sets: add/remove of elements; counters; flags;
* removing a map field needs a context (an error reply otherwise), and only
  removes what the context saw (a field or element added later survives);
  removing an element or field that is not there is a precondition error;
* a missing key fetches as "not found" (a ``DtFetchResp`` without a value);
* unknown bucket types and malformed requests get error replies;
* search (``RpbSearchQueryReq``) over maps for a registered index, with the
  filter syntax the store generates (clauses joined by ``AND``: ``f:v``,
  ``f:[lo TO hi]``, ``f:{lo TO *]``, backslash escapes) and ``sort``.

Fault switches: ``fail_if`` (error replies to chosen requests), ``drop``
(close the connection after reading a request, without answering), ``fail``
(answer error replies), ``stall`` (read and
never answer until released), ``stop``/``restart`` (the node goes away and
comes back on the same port, keeping its data).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from riaktq_py.store.riak import messages as pb
from riaktq_py.store.riak.connection import Node

_HEADER = struct.Struct(">IB")


@dataclass
class _Field:
    kind: int
    version: int
    register: bytes = b""
    elements: dict[bytes, int] = field(default_factory=dict)  # element -> version added
    counter: int = 0
    flag: bool = False


class _Refused(Exception):
    """Becomes an RpbErrorResp."""


def _context(version: int) -> bytes:
    return b"ctx:" + version.to_bytes(8, "big")


def _context_version(context: bytes) -> int | None:
    if not context:
        return None
    if not context.startswith(b"ctx:") or len(context) != 12:
        raise _Refused("bad context")
    return int.from_bytes(context[4:], "big")


class RiakDouble:
    """One fake node. ``bucket_types``: the map bucket types that exist."""

    def __init__(self, bucket_types: tuple[str, ...] = ("riaktq_task_t",)) -> None:
        self.bucket_types = set(bucket_types)
        self.maps: dict[tuple[str, str, str], dict[tuple[str, int], _Field]] = {}
        self.indexes: dict[str, str] = {}  # search index -> bucket type
        self.requests: list[tuple[int, Any]] = []
        self.drop = 0  # drop the next N requests (-1: all)
        self.fail = 0  # answer an error to the next N requests (-1: all)
        self.fail_message = "overload"
        #: answer an error to the requests this accepts (code, parsed request)
        self.fail_if: Callable[[int, Any], bool] | None = None
        self.stall = threading.Event()  # set: read requests and hold them
        self.released = threading.Event()
        self.stalled = threading.Event()  # set when a request is being held
        self._version = 0
        self._lock = threading.RLock()
        self._conns: set[socket.socket] = set()
        self._server: socket.socket | None = None
        self.port = 0
        self.start()

    @property
    def node(self) -> Node:
        return Node("127.0.0.1", self.port)

    @property
    def url_host(self) -> str:
        return f"127.0.0.1:{self.port}"

    # -- server lifecycle -----------------------------------------------------

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self.port = server.getsockname()[1]
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        """The node goes down: no listener, every connection closed."""
        server, self._server = self._server, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        with self._lock:
            conns, self._conns = set(self._conns), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self.released.set()

    def restart(self) -> None:
        self.stop()
        self.released.clear()
        self.start()

    def __enter__(self) -> RiakDouble:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with contextlib.closing(conn):
            try:
                while True:
                    length, code = _HEADER.unpack(_read(conn, _HEADER.size))
                    body = _read(conn, length - 1)
                    if not self._answer(conn, code, body):
                        return
            except (OSError, EOFError):
                return
            finally:
                with self._lock:
                    self._conns.discard(conn)

    def _answer(self, conn: socket.socket, code: int, body: bytes) -> bool:
        with self._lock:
            if self.drop:
                self.drop -= self.drop > 0
                return False
            failing = bool(self.fail)
            if failing:
                self.fail -= self.fail > 0
        if self.stall.is_set():
            self.stalled.set()
            self.released.wait()
            return False
        try:
            if failing:
                raise _Refused(self.fail_message)
            reply_code, reply = self._dispatch(code, body)
        except _Refused as exc:
            error = pb.RpbErrorResp(errmsg=str(exc).encode(), errcode=0)
            reply_code, reply = pb.ERROR_RESP, error.SerializeToString()
        conn.sendall(_HEADER.pack(len(reply) + 1, reply_code) + reply)
        return True

    # -- requests -------------------------------------------------------------

    def _dispatch(self, code: int, body: bytes) -> tuple[int, bytes]:
        handlers = {
            pb.PING_REQ: (None, self._ping),
            pb.DT_FETCH_REQ: (pb.DtFetchReq, self._fetch),
            pb.DT_UPDATE_REQ: (pb.DtUpdateReq, self._update),
            pb.DEL_REQ: (pb.RpbDelReq, self._delete),
            pb.SEARCH_QUERY_REQ: (pb.RpbSearchQueryReq, self._search),
        }
        if code not in handlers:
            raise _Refused(f"Unknown message code: {code}")
        cls, handler = handlers[code]
        request = None
        if cls is not None:
            request = cls()
            try:
                request.ParseFromString(body)
            except Exception as exc:
                raise _Refused(f"bad request: {exc}") from exc
        with self._lock:
            if self.fail_if is not None and self.fail_if(code, request):
                raise _Refused(self.fail_message)
            self.requests.append((code, request))
            return handler(request)

    def _ping(self, _request: Any) -> tuple[int, bytes]:
        return pb.PING_RESP, b""

    def _where(self, request: Any) -> tuple[str, str, str]:
        bucket_type = request.type.decode()
        if bucket_type not in self.bucket_types:
            raise _Refused(f"Error no bucket type `{bucket_type}`")
        return bucket_type, request.bucket.decode(), request.key.decode()

    def _fetch(self, request: Any) -> tuple[int, bytes]:
        where = self._where(request)
        reply = pb.DtFetchResp(type=pb.DT_MAP)
        fields = self.maps.get(where)
        if fields is not None:
            reply.value.map_value.extend(_entries(fields))
            if request.include_context:
                reply.context = _context(self._version)
        return pb.DT_FETCH_RESP, reply.SerializeToString()

    def _update(self, request: Any) -> tuple[int, bytes]:
        where = self._where(request)
        if not request.HasField("key") or not request.op.HasField("map_op"):
            raise _Refused("map update needs a key and a map_op")
        seen = _context_version(request.context)
        fields = {k: _copy(f) for k, f in self.maps.get(where, {}).items()}
        self._version += 1
        op = request.op.map_op
        for removed in op.removes:
            name = (removed.name.decode(), removed.type)
            if seen is None:
                raise _Refused("{precondition,context_required}")
            if name not in fields:
                raise _Refused(f"{{precondition,{{not_present,{name}}}}}")
            if fields[name].version <= seen:
                del fields[name]
        for update in op.updates:
            self._apply(fields, update, seen)
        self.maps[where] = fields
        reply = pb.DtUpdateResp()
        if request.return_body:
            reply.map_value.extend(_entries(fields))
            reply.context = _context(self._version)
        return pb.DT_UPDATE_RESP, reply.SerializeToString()

    def _apply(self, fields: dict[tuple[str, int], _Field], update: Any, seen: int | None) -> None:
        name = (update.field.name.decode(), update.field.type)
        current = fields.setdefault(name, _Field(update.field.type, self._version))
        current.version = self._version
        kind = update.field.type
        if kind == pb.REGISTER and update.HasField("register_op"):
            current.register = bytes(update.register_op)
        elif kind == pb.SET and update.HasField("set_op"):
            for element in update.set_op.adds:
                current.elements[bytes(element)] = self._version
            for element in update.set_op.removes:
                added = current.elements.get(bytes(element))
                if added is None:
                    raise _Refused(f"{{precondition,{{not_present,{bytes(element)!r}}}}}")
                if seen is None or added <= seen:
                    del current.elements[bytes(element)]
        elif kind == pb.COUNTER and update.HasField("counter_op"):
            increment = update.counter_op.increment if update.counter_op.HasField(
                "increment") else 1
            current.counter += increment
        elif kind == pb.FLAG and update.HasField("flag_op"):
            current.flag = update.flag_op == pb.ENABLE
        else:
            raise _Refused(f"bad operation for field {name}")

    def _delete(self, request: Any) -> tuple[int, bytes]:
        self.maps.pop(self._where(request), None)
        return pb.DEL_RESP, b""

    # -- search ---------------------------------------------------------------

    def _search(self, request: Any) -> tuple[int, bytes]:
        index = request.index.decode()
        if index not in self.indexes:
            raise _Refused(f"No index <<\"{index}\">> found")
        bucket_type = self.indexes[index]
        docs = [_doc(where, fields) for where, fields in self.maps.items()
                if where[0] == bucket_type]
        clauses = [c for text in (request.q.decode(), request.filter.decode())
                   for c in _split_and(text) if c != ["*:*"]]
        matches = [d for d in docs if all(_clause_matches(c, d) for c in clauses)]
        for name, direction in reversed(_sort_spec(request.sort.decode())):
            matches.sort(key=_sort_by(name), reverse=direction == "desc")
        rows = request.rows if request.HasField("rows") else 10
        page = matches[request.start : request.start + rows]
        reply = pb.RpbSearchQueryResp(num_found=len(matches))
        for doc in page:
            out = reply.docs.add()
            for name in ("_yz_rk", "_yz_rb", "_yz_rt"):
                out.fields.add(key=name.encode(), value=doc[name][0].encode())
        return pb.SEARCH_QUERY_RESP, reply.SerializeToString()


def _read(conn: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = conn.recv(size)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _copy(f: _Field) -> _Field:
    return _Field(f.kind, f.version, f.register, dict(f.elements), f.counter, f.flag)


def _entries(fields: dict[tuple[str, int], _Field]) -> Iterator[Any]:
    for (name, kind), f in sorted(fields.items()):
        entry = pb.MapEntry(field=pb.MapField(name=name.encode(), type=kind))
        if kind == pb.REGISTER:
            entry.register_value = f.register
        elif kind == pb.SET:
            entry.set_value.extend(sorted(f.elements))
        elif kind == pb.COUNTER:
            entry.counter_value = f.counter
        elif kind == pb.FLAG:
            entry.flag_value = f.flag
        yield entry


_SUFFIX = {pb.REGISTER: "register", pb.SET: "set", pb.COUNTER: "counter", pb.FLAG: "flag"}


def _sort_by(name: str) -> Callable[[dict[str, list[str]]], tuple[int, int, str]]:
    return lambda doc: _sort_key(doc.get(name, [""])[0])


def _doc(
    where: tuple[str, str, str], fields: dict[tuple[str, int], _Field]
) -> dict[str, list[str]]:
    doc = {"_yz_rt": [where[0]], "_yz_rb": [where[1]], "_yz_rk": [where[2]]}
    for (name, kind), f in fields.items():
        values = {
            pb.REGISTER: [f.register.decode("utf-8", "replace")],
            pb.SET: [e.decode("utf-8", "replace") for e in f.elements],
            pb.COUNTER: [str(f.counter)],
            pb.FLAG: [str(f.flag).lower()],
        }[kind]
        doc[f"{name}_{_SUFFIX[kind]}"] = values
    return doc


def _tokens(text: str) -> list[str]:
    """Split on unescaped spaces, keeping escapes (unescaped later)."""
    out, current, escaped = [], "", False
    for char in text:
        if escaped:
            current += "\\" + char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == " ":
            out.append(current)
            current = ""
        else:
            current += char
    out.append(current)
    return [t for t in out if t]


def _unescape(text: str) -> str:
    out, escaped = "", False
    for char in text:
        if escaped or char != "\\":
            out += char
            escaped = False
        else:
            escaped = True
    return out


def _split_and(text: str) -> list[list[str]]:
    clauses: list[list[str]] = [[]]
    for token in _tokens(text):
        if token == "AND":
            clauses.append([])
        else:
            clauses[-1].append(token)
    return [c for c in clauses if c]


def _sort_key(value: str) -> tuple[int, int, str]:
    try:
        return (0, int(value), "")
    except ValueError:
        return (1, 0, value)


def _clause_matches(clause: list[str], doc: dict[str, list[str]]) -> bool:
    name, _, value = clause[0].partition(":")
    values = doc.get(name, [])
    if len(clause) == 1:
        return (value == "*" and bool(values)) or _unescape(value) in values
    low_text, _to, high_text = value, clause[1], clause[2]  # "[lo" "TO" "hi]"
    low_inclusive, high_inclusive = low_text[0] == "[", high_text[-1] == "]"
    low, high = _unescape(low_text[1:]), _unescape(high_text[:-1])
    for candidate in values:
        key = _sort_key(candidate)
        above = low == "*" or (key >= _sort_key(low) if low_inclusive else key > _sort_key(low))
        below = high == "*" or (
            key <= _sort_key(high) if high_inclusive else key < _sort_key(high))
        if above and below:
            return True
    return False


def _sort_spec(text: str) -> list[tuple[str, str]]:
    spec = []
    for part in text.split(","):
        words = part.split()
        if words:
            spec.append((words[0], words[1] if len(words) > 1 else "asc"))
    return spec
