"""The isolated worker's side (``python -m mybackprop.harness.worker SPEC MEMORY``): it loads the
candidate itself, limits its own address space, and answers problems one at a time with the
same checks as an in-process run. Its replies are data only (harness/wire.py): the parent reads
nothing it would have to trust."""

from __future__ import annotations

import os
import sys

from mybackprop.harness import wire
from mybackprop.harness.contract import Candidate, CandidateLoadError, Refusal
from mybackprop.harness.isolate import receive
from mybackprop.harness.loading import load_candidate
from mybackprop.harness.runner import run_in_process
from mybackprop.harness.supervise import die_with_parent


def serve(spec: str, memory_limit: int) -> None:
    """The child's side: load the candidate, then answer problems until stdin closes."""
    import resource  # POSIX only: imported where it is used

    die_with_parent()
    channel = os.dup(1)  # replies; the candidate's own prints go nowhere
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        candidate: Candidate = load_candidate(spec)
    except CandidateLoadError as exc:
        _write(channel, wire.encode({"kind": "load_error", "reason": str(exc)}))
        return
    _write(channel, wire.encode({"kind": "ready", "supports": candidate.supports.to_dict()}))
    while True:
        try:
            nonce, problem = receive(sys.stdin.buffer)
        except EOFError:
            return
        answer, reason = run_in_process(candidate, problem, None)
        if reason == "ran out of memory":
            reason += f" (limit {memory_limit / 2**30:g} GiB of address space)"
        _write(channel, wire.encode_answer(nonce, answer, str(reason),
                                           isinstance(reason, Refusal)))


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
