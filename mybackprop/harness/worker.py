"""The isolated worker's side (``python -m mybackprop.harness.worker SPEC MEMORY``): it loads the
candidate itself, limits its own address space, and answers problems one at a time over the pipe
that isolate.IsolatedRunner reads, with the same checks as an in-process run."""

from __future__ import annotations

import os
import sys

from mybackprop.harness.contract import Candidate, CandidateLoadError
from mybackprop.harness.isolate import receive, send
from mybackprop.harness.loading import load_candidate
from mybackprop.harness.runner import run_in_process


def serve(spec: str, memory_limit: int) -> None:
    """The child's side: load the candidate, then answer problems until stdin closes."""
    import resource  # POSIX only: imported where it is used

    channel = os.fdopen(os.dup(1), "wb")  # replies; the candidate's own prints go nowhere
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    try:
        candidate: Candidate = load_candidate(spec)
    except CandidateLoadError as exc:
        send(channel, ("load_error", str(exc)))
        return
    send(channel, ("ready", candidate.name, candidate.supports))
    while True:
        try:
            problem = receive(sys.stdin.buffer)
        except EOFError:
            return
        answer, reason = run_in_process(candidate, problem, None)
        if reason == "ran out of memory":
            reason += f" (limit {memory_limit / 2**30:g} GiB of address space)"
        send(channel, (answer, reason))


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
