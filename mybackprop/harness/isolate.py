"""--isolate: run a candidate in its own process, with a time and a memory limit.

The worker (``python -m mybackprop.harness.worker SPEC MEMORY``) loads the candidate itself, so
untrusted code never runs in the parent, limits its own address space, and answers one problem
at a time over a pipe (length-prefixed pickles) with the same checks as an in-process run.
The parent kills a worker that runs past the time limit and restarts any worker that died, so
a candidate that calls os._exit, segfaults or exhausts memory is just an error for that case.
"""

from __future__ import annotations

import pickle
import select
import signal
import struct
import subprocess
import sys
from typing import Any, BinaryIO

from mybackprop.harness.contract import CandidateLoadError, Supports
from mybackprop.spec.problem import Gradients, Problem

DEFAULT_MEMORY_LIMIT = 4 * 2**30  # bytes of address space; numpy and a candidate fit easily
STARTUP_SECONDS = 120.0  # importing the candidate (it may import torch)
_HEADER = struct.Struct("!Q")


def send(stream: BinaryIO, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def receive(stream: BinaryIO) -> Any:
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        raise EOFError
    payload = _read_exactly(stream, _HEADER.unpack(header)[0])
    if payload is None:
        raise EOFError
    return pickle.loads(payload)


class IsolatedRunner:
    """The parent's side: one worker process per candidate, restarted after every death."""

    def __init__(self, spec: str, memory_limit: int = DEFAULT_MEMORY_LIMIT) -> None:
        self.spec, self.memory_limit = spec, memory_limit
        self._process: subprocess.Popen[bytes] | None = None
        self.name, self.supports = self._start()

    def _start(self) -> tuple[str, Supports]:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "mybackprop.harness.worker", self.spec, str(self.memory_limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        reply = self._reply(STARTUP_SECONDS)
        if not isinstance(reply, tuple) or reply[0] != "ready":
            self.close()
            reason = reply[1] if isinstance(reply, tuple) else reply
            raise CandidateLoadError(str(reason))
        return reply[1], reply[2]

    def run(self, problem: Problem, time_limit: float | None) -> tuple[Gradients | None, str]:
        """The checked answer, or the reason this case is an error (same as in-process)."""
        if self._process is None or self._process.poll() is not None:
            self._start()
        assert self._process is not None and self._process.stdin is not None
        try:
            send(self._process.stdin, problem)
        except BrokenPipeError:
            return None, self._death()
        reply = self._reply(time_limit)
        if isinstance(reply, str):
            return None, reply
        return reply

    def _reply(self, seconds: float | None) -> Any:
        """The worker's next message, or a one-line reason it gave none."""
        assert self._process is not None and self._process.stdout is not None
        ready, _, _ = select.select([self._process.stdout], [], [], seconds)
        if not ready:
            self.close()
            return f"hung: no answer within the time limit of {seconds:g} s"
        try:
            return receive(self._process.stdout)
        except EOFError:
            return self._death()

    def _death(self) -> str:
        assert self._process is not None
        code = self._process.wait()
        self._process = None
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"killed the interpreter: {name}{hint}"
        return f"ended the interpreter with exit code {code}"

    def close(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
