"""--isolate: run a candidate in its own process, sandboxed, with a time and a memory limit.

The worker (``python -m mybackprop.harness.worker SPEC MEMORY``) loads the candidate itself, so
untrusted code never runs in the parent, and answers one problem at a time. Where bubblewrap is
installed it runs in a sandbox (harness/sandbox.py): its own PID and network namespaces, a
private /tmp and working directory, no view of the run folder. Its replies are data only
(harness/wire.py): the parent never unpickles anything the candidate's process wrote, reads
each reply whole within the time limit, and takes only arrays of the names, dtypes and shapes
the problem asks for. The parent kills a worker that runs past the time limit or breaks the
protocol, and restarts any worker that died, so a candidate that calls os._exit, segfaults,
exhausts memory or forges a reply is just an error for that case.
"""

from __future__ import annotations

import os
import pickle
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, BinaryIO

from mybackprop.harness import wire
from mybackprop.harness.contract import CandidateLoadError, Refusal, Supports
from mybackprop.harness.sandbox import Sandbox, bwrap
from mybackprop.spec.problem import Gradients, Problem

DEFAULT_MEMORY_LIMIT = 4 * 2**30  # bytes of address space; numpy and a candidate fit easily
STARTUP_SECONDS = 120.0  # importing the candidate (it may import torch)
READY_BYTES = 1 << 16  # the ready message: a name and a declaration


def send(stream: BinaryIO, message: Any) -> None:
    """The parent's request to its worker: a pickle the trusted side writes, length-prefixed."""
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(len(payload).to_bytes(8, "big") + payload)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The worker's side of send (it unpickles what the parent wrote, never the reverse)."""
    header = stream.read(8)
    if len(header) < 8:
        raise EOFError
    payload = stream.read(int.from_bytes(header, "big"))
    if len(payload) < int.from_bytes(header, "big"):
        raise EOFError
    return pickle.loads(payload)


class IsolatedRunner:
    """The parent's side: one worker process per candidate, restarted after every death.

    `sandboxed`: None runs in the sandbox where bubblewrap works here, True requires it, False
    runs a plain process. `visible`: the user's paths the sandbox shows (the candidate's file or
    folder); `hidden`: paths it must not show even inside those (the run folder)."""

    def __init__(self, spec: str, memory_limit: int = DEFAULT_MEMORY_LIMIT,
                 sandboxed: bool | None = None, visible: list[Path] | None = None,
                 hidden: list[Path] | None = None) -> None:
        self.spec, self.memory_limit = spec, memory_limit
        if sandboxed and bwrap() is None:
            raise CandidateLoadError("the sandbox needs bubblewrap (bwrap), which is not "
                                     "installed or cannot make namespaces here: run "
                                     "scripts/setup.sh as root, or run without the sandbox")
        self.sandboxed = bwrap() is not None if sandboxed is None else sandboxed
        self.visible, self.hidden = visible or [], hidden or []
        self._process: subprocess.Popen[bytes] | None = None
        self._sandbox: Sandbox | None = None
        self.name = spec
        self.supports = self._start()

    def _worker_spec(self) -> str:
        """The spec the worker loads: a file as an absolute path (its working directory is
        its own)."""
        target, sep, attr = self.spec.rpartition(":")
        if sep and target.endswith(".py"):
            return f"{Path(target).resolve()}:{attr}"
        return self.spec

    def _start(self) -> Supports:
        argv = [sys.executable, "-m", "mybackprop.harness.worker", self._worker_spec(),
                str(self.memory_limit)]
        env = dict(os.environ)
        if self.sandboxed:
            # what the user put on PYTHONPATH is theirs to show (a course's shared helpers)
            shared = [Path(p).resolve() for p in env.get("PYTHONPATH", "").split(os.pathsep)
                      if p and Path(p).exists()]
            self._sandbox = Sandbox(argv, [*self.visible, *shared], self.hidden,
                                    self.memory_limit)
            argv = self._sandbox.argv
            if ":" in self.spec and not self.spec.rpartition(":")[0].endswith(".py"):
                # a module is imported from where the run started, which the sandbox shows
                env["PYTHONPATH"] = os.pathsep.join(
                    [os.getcwd(), *filter(None, [env.get("PYTHONPATH")])])
        self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        try:
            header, _ = wire.read(self._fd(), STARTUP_SECONDS, 0, READY_BYTES)
        except (TimeoutError, EOFError, wire.ProtocolError) as exc:
            reason = self._death() if isinstance(exc, EOFError) else (
                "no answer while loading" if isinstance(exc, TimeoutError) else str(exc))
            self.close()
            raise CandidateLoadError(f"{self.spec}: its worker {reason}") from None
        if header.get("kind") == "load_error" and isinstance(header.get("reason"), str):
            self.close()
            raise CandidateLoadError(header["reason"][:500])
        if header.get("kind") != "ready" or not isinstance(header.get("supports"), dict):
            self.close()
            raise CandidateLoadError(f"{self.spec}: its worker did not say it was ready")
        return Supports.coerce(header["supports"])

    def _fd(self) -> int:
        assert self._process is not None and self._process.stdout is not None
        return self._process.stdout.fileno()

    def run(self, problem: Problem, time_limit: float | None) -> tuple[Gradients | None, str]:
        """The checked answer, or the reason this case is an error (same as in-process)."""
        if self._process is None or self._process.poll() is not None:
            self.close()
            try:
                self._start()
            except CandidateLoadError as exc:
                return None, f"could not be restarted: {exc}".splitlines()[0]
        assert self._process is not None and self._process.stdin is not None
        nonce = secrets.randbits(63)
        try:
            send(self._process.stdin, (nonce, problem))
        except (BrokenPipeError, OSError):
            return None, self._death()
        try:
            header, payload = wire.read(self._fd(), time_limit, wire.max_payload(problem))
            if wire.pending(self._fd()):
                raise wire.ProtocolError("more than one reply")
            answer, reason, refused = wire.decode_answer(header, payload, problem, nonce)
        except TimeoutError:
            self.close()
            return None, f"hung: no answer within the time limit of {time_limit:g} s"
        except EOFError:
            return None, self._death()
        except wire.ProtocolError as exc:
            self.close()
            return None, f"broke the isolated worker's reply protocol: {exc}"
        return answer, Refusal(reason) if refused else reason

    def _death(self) -> str:
        assert self._process is not None
        try:
            code = self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # its output closed, the process lives on
            self.close()
            return "closed its reply channel"
        self.close()
        if self.sandboxed and code > 128:  # the sandbox reports a signal as 128 + its number
            code = -(code - 128)
        if code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory?)" if name == "SIGKILL" else ""
            return f"killed the interpreter: {name}{hint}"
        return f"ended the interpreter with exit code {code}"

    def close(self) -> None:
        """End the worker and every process it started."""
        if self._process is not None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)  # its session: forks too
            except (ProcessLookupError, PermissionError):
                pass
            self._process.kill()
            self._process.wait()
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
            self._process = None
        if self._sandbox is not None:
            self._sandbox.kill()
            self._sandbox = None
