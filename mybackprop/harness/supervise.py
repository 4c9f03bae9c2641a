"""The supervisor: the process that decides a check's exit code, in which no candidate ran.

``mybackprop check`` forks before it loads anything: the child runs the check (candidates
in-process or in their sandboxes, the oracles, the records), the parent only waits. A candidate
run in-process shares the child's process, so it can end it (os._exit(0), a segfault, a kill),
and a process that ends with exit code 0 looks to a shell or a grader like a clean pass. The
parent, which no candidate code reached, decides instead:

- the child said it finished (its exit code, in memory shared with the parent) and
  cases.jsonl holds one record for every (case, candidate) pair the run asked for, each once:
  the child's exit code stands;
- otherwise the run is not judged: one line says how it ended, how many records there are, and
  which candidate was being called, and the exit code is 1 (or the signal's 128 + n).

What the child tells the parent (the run folder, the pairs asked for, the candidate being
called) goes through a small shared memory map, so a child that dies mid-write costs nothing
but the detail. An in-process candidate could still reach and forge it, or the records: the
sandbox (--isolate) is the boundary for that; this is what catches a run that merely ended.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

_SIZE = 1 << 16
_SHARED: mmap.mmap | None = None  # set in the supervised child only
_STATE: dict[str, Any] = {}

EXIT_FAILURES, EXIT_INTERRUPTED = 1, 130
# Seconds a run told to stop (SIGTERM, SIGHUP sent to mybackprop) has before it is killed: a
# candidate in-process may ignore the signal, or hold the run in C code.
STOP_SECONDS = 10.0


def note(**fields: Any) -> None:
    """Tell the supervisor (if this is a supervised check) about the run: folder, expect,
    calling, exit. Cheap: called before every in-process candidate call."""
    if _SHARED is None:
        return
    _STATE.update(fields)
    data = json.dumps(_STATE).encode("utf-8")[:_SIZE - 8]
    _SHARED.seek(0)
    _SHARED.write(len(data).to_bytes(8, "big") + data)


def calling(case: int | None, candidate: str = "", part: str = "case") -> None:
    """The (case, candidate) about to be called, so a run that ends inside it can name it;
    None: the call returned."""
    if _SHARED is not None:
        note(calling="" if case is None else f"{part} {case} of {candidate}")


def _read(shared: mmap.mmap) -> dict[str, Any]:
    shared.seek(0)
    size = int.from_bytes(shared.read(8), "big")
    try:
        found = json.loads(shared.read(min(size, _SIZE - 8)).decode("utf-8"))
    except ValueError:  # it died mid-write: the detail is lost, not the judgement
        return {}
    return found if isinstance(found, dict) else {}


def supervised(run: Callable[[], int]) -> int:
    """Run `run` (a check, returning its exit code) in a forked child; return the exit code
    the supervisor decides. Where there is no fork, `run` runs here, unsupervised."""
    global _SHARED
    if not hasattr(os, "fork"):
        return run()
    shared = mmap.mmap(-1, _SIZE)  # MAP_SHARED | MAP_ANONYMOUS: the child's writes show here
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    # Blocked before the fork (no signal falls between it and the wait), unblocked in the child.
    before = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
    pid = os.fork()
    if pid == 0:  # the child: the check itself
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
        _SHARED = shared
        die_with_parent()
        code = EXIT_FAILURES
        try:
            code = run()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else EXIT_FAILURES
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C: the same end
            folder = _STATE.get("folder")
            resume = (f"; continue it with the same options and --resume --out {folder}"
                      if folder else "")
            print(f"mybackprop: interrupted{resume}", file=sys.stderr)
            code = EXIT_INTERRUPTED
        except BaseException:  # noqa: BLE001 - a bug of ours: its traceback, then exit 1
            import traceback

            traceback.print_exc()
        finally:
            note(exit=code)
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
        os._exit(code)
    try:
        return _wait(pid, shared)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when the process that started it dies (a supervised
    run when its supervisor is killed with -9, an isolated worker when its harness is): no run
    and no candidate left behind."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_WATCHED = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD}
_SI_USER = 0  # siginfo's si_code of a signal sent by kill(), not by the terminal


def _wait(pid: int, shared: mmap.mmap) -> int:
    """The parent: wait for the child, then judge how it ended. Ctrl-C at the terminal reaches
    the child by itself (the same process group); a signal sent to the parent alone (kill) is
    passed on to it."""
    received: list[int] = []  # the stop signals that reached the supervisor, and its own kill
    deadline = None  # a child told to stop that does not is killed this long after
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if deadline is not None and time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            received.append(signal.SIGKILL)
            deadline = None
        info = signal.sigtimedwait(_WATCHED, 1.0)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        if deadline is None:  # told to stop, by Ctrl-C or a kill: it has STOP_SECONDS
            deadline = time.monotonic() + STOP_SECONDS
        received.append(info.si_signo)
        if info.si_signo != signal.SIGINT or info.si_code == _SI_USER:
            try:
                os.kill(pid, info.si_signo)
            except ProcessLookupError:
                pass
    code = os.waitstatus_to_exitcode(status)
    state = _read(shared)
    verdict, exit_code = judge(code, state, received)
    if verdict:
        start = "\n" if sys.stderr.isatty() else ""  # below a progress bar the child left
        print(f"{start}mybackprop: error: {verdict}", file=sys.stderr)
    return exit_code


def judge(code: int, state: dict[str, Any], sent: Sequence[int] = ()) -> tuple[str, int]:
    """('', exit code) where the child's exit code stands; else (why not, the exit code).
    `sent`: the signals that told the run to stop (a kill or Ctrl-C from outside, not a
    candidate's doing), and SIGKILL last where the supervisor killed a run that did not stop."""
    shell = 128 - code if code < 0 else code  # a signal, as a shell reports it
    folder = state.get("folder")
    if state.get("exit") == code:  # it finished, and said so
        if code not in (0, 1) or folder is None:  # a usage error (2), an interruption
            return "", shell
        problem = _records_problem(Path(folder), state.get("expect"))
        if problem:
            return f"{problem}: the run is not judged", EXIT_FAILURES
        return "", code
    during = f" during {state['calling']}" if state.get("calling") else ""
    if code < 0:
        name = signal.Signals(-code).name
        how = f"was killed by {name}"
        if -code == signal.SIGKILL and len(sent) > 1 and sent[-1] == signal.SIGKILL:
            cause = (f"{signal.Signals(sent[0]).name} was sent to mybackprop, and the run did "
                     f"not stop within {STOP_SECONDS:g} s (a candidate run in-process may "
                     "ignore it), so the supervisor killed it")
        elif -code in sent:
            cause = f"{name} was sent to mybackprop"
        else:
            cause = ("a candidate run in-process may have crashed or killed it, or the "
                     "system did" + (" (out of memory?)" if name == "SIGKILL" else ""))
    else:
        how = f"ended with exit code {code}"
        cause = ("mybackprop never ends a run so: a candidate run in-process ended it "
                 "(os._exit, or exit in a thread or in C)") if state.get("calling") else \
            "a candidate run in-process may have ended it (os._exit)"
    if folder is None:
        return (f"the check {how}{during}, before its run folder was made: {cause}",
                shell if shell else EXIT_FAILURES)
    count = _count(Path(folder))
    advice = ("continue it with the same options and --resume" if -code in sent else
              "run the candidate isolated (--isolate), where that is an error of its case")
    return (f"the run {how}{during}, with {count} of {state.get('expect', '?')} records in "
            f"{Path(folder) / 'cases.jsonl'} and no summary: {cause}; the run is not judged: "
            f"{advice}", shell if shell else EXIT_FAILURES)


def _count(folder: Path) -> int:
    try:
        with open(folder / "cases.jsonl", "rb") as lines:
            return sum(1 for line in lines if line.strip())
    except OSError:
        return 0


def _records_problem(folder: Path, expect: Any) -> str:
    """What is wrong with a finished run's cases.jsonl ('' if nothing): every (case,
    candidate) pair asked for once, each line a record (read here on its own: the supervisor
    trusts nothing the run process wrote, its reader included)."""
    path = folder / "cases.jsonl"
    seen: set[tuple[int, str]] = set()
    duplicated = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not (isinstance(record, dict) and isinstance(record.get("case"), int)
                        and isinstance(record.get("candidate"), str)):
                    return f"{path} line {number} is not a record mybackprop wrote"
                key = (record["case"], record["candidate"])
                duplicated += key in seen
                seen.add(key)
    except OSError as exc:
        return f"{path} cannot be read ({exc.strerror or exc})"
    if duplicated:
        return f"{path} holds {duplicated} records twice"
    if isinstance(expect, int) and len(seen) != expect:
        return f"{path} holds {len(seen)} records where the run asked for {expect}"
    return ""
