"""Process execution mode: a handler run in a child process that can really be stopped.

A thread running Python code cannot be killed, so a timed-out handler in the
default (thread) mode is abandoned: it keeps its thread until it returns, and
its late result is ignored. With ``execution="process"`` an instance runs its
handler in a child process (``python -m riaktq_py.runner module:object``)
instead; on timeout the child is killed and a fresh one is started for the next
task. Requests and replies are msgpack frames on the child's stdin/stdout
(4-byte big-endian length, then the body): no pickle.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import IO, Any

from riaktq_py import payload
from riaktq_py.errors import ConfigError

_HEADER = struct.Struct(">I")
#: seconds a child process may take to import and initialise its handler
STARTUP_TIMEOUT = 60.0


class HandlerFailed(Exception):
    """The handler raised in the child process; the message is its error text."""


def handler_path(obj: object) -> str:
    """``module:qualname`` of an importable handler (function, class or instance's class)."""
    if isinstance(obj, str):
        if ":" not in obj:
            raise ConfigError(f"handler path {obj!r} is not of the form module:object")
        return obj
    target = obj if callable(obj) and hasattr(obj, "__qualname__") else type(obj)
    module, qualname = getattr(target, "__module__", None), getattr(target, "__qualname__", "")
    if not module or "<" in qualname or module == "__main__":
        raise ConfigError(
            f"process execution needs a handler importable by path (module:object),"
            f" not {obj!r}: define it at module level or pass 'module:object'"
        )
    return f"{module}:{qualname}"


class SubprocessHandler:
    """A handler that forwards each task to a child process running the real handler."""

    def __init__(self, path: str, options: Mapping[str, Any] | None = None) -> None:
        self.path = handler_path(path)
        self.options = dict(options or {})
        self._child: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"SubprocessHandler({self.path!r})"

    def init(self, options: Mapping[str, Any]) -> Any:
        self.options = {**self.options, **options}
        return None

    def handle(self, task_id: str, input: Any, tags: frozenset[str], state: Any) -> Any:
        return self.run(task_id, input, tags, None)

    def run(self, task_id: str, input: Any, tags: frozenset[str], timeout: float | None) -> Any:
        """Run one task in the child; kill it and raise TimeoutError after ``timeout`` s."""
        child = self._ensure_child()
        assert child.stdin is not None and child.stdout is not None
        _write_frame(child.stdin, [task_id, payload.encode(input), sorted(tags)])
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            ok, value = _read_frame(child.stdout, deadline)
        except TimeoutError:
            self.close()
            raise TimeoutError(f"ran longer than {timeout} s; its process was killed") from None
        except EOFError:
            code = child.poll()
            self.close()
            raise RuntimeError(f"handler process {self.path} died (exit code {code})") from None
        if not ok:
            raise HandlerFailed(value)
        return payload.decode(value, what=f"output of {task_id!r}")

    def _ensure_child(self) -> subprocess.Popen[bytes]:
        if self._child is None or self._child.poll() is not None:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
            self._child = subprocess.Popen(
                [sys.executable, "-m", "riaktq_py.runner", self.path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            assert self._child.stdin is not None and self._child.stdout is not None
            _write_frame(self._child.stdin, self.options)
            # the task's timeout starts once the child is ready, not during its start-up
            try:
                ok, error = _read_frame(self._child.stdout, time.monotonic() + STARTUP_TIMEOUT)
            except (TimeoutError, EOFError):
                self.close()
                raise RuntimeError(f"handler process {self.path} did not start") from None
            if not ok:
                self.close()
                raise HandlerFailed(f"handler process {self.path} failed to start: {error}")
        return self._child

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            for stream in (self._child.stdin, self._child.stdout):
                if stream is not None:
                    stream.close()
            self._child = None


def _write_frame(stream: IO[bytes], value: Any) -> None:
    body = payload.encode(value, limit=2**31)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    fd = stream.fileno()
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: IO[bytes], deadline: float | None) -> Any:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size, deadline))
    return payload.decode(_read_exact(stream, size, deadline), what="runner frame")


def main(argv: list[str] | None = None) -> int:
    """The child: load the handler, then answer one frame per task until stdin closes."""
    from riaktq_py.handlers import load_handler

    [path] = (argv if argv is not None else sys.argv[1:])[:1]
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # handler prints must not corrupt the frames
    try:
        options = _read_frame(stdin, None)
        try:
            handler = load_handler(path)
            state = handler.init(options)
        except Exception as exc:
            _write_frame(stdout, [False, f"{type(exc).__name__}: {exc}"])
            return 1
        _write_frame(stdout, [True, None])  # ready
        while True:
            key, raw, tags = _read_frame(stdin, None)
            try:
                value = payload.decode(raw, what=f"input of {key!r}")
                reply = [True, payload.encode(handler.handle(key, value, frozenset(tags), state))]
            except Exception as exc:
                reply = [False, f"{type(exc).__name__}: {exc}"]
            _write_frame(stdout, reply)
    except EOFError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
