"""The sandbox an isolated candidate runs in: bubblewrap (Debian's `bubblewrap`, installed by
scripts/setup.sh), plus cgroup limits where this machine lets us make them.

Inside: its own PID, network, IPC, UTS, user and cgroup namespaces (it cannot signal the
harness, nor reach a network), a fresh /tmp and an empty working directory, the read-only
Python installation and mybackprop, and of the user's files only the candidate's own (its
file, or for a module the folder it is imported from, with the run folder hidden). Every
process it starts lives in its PID namespace, so killing the sandbox kills them all; where the
cgroup v1 `pids` and `memory` controllers are writable, the whole tree also gets a process and
a memory limit. Without bubblewrap an isolated candidate runs in a plain process with an
address-space limit per process, and the run says so.
"""

from __future__ import annotations

import functools
import importlib.util
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

MAX_PROCESSES = 64  # in the whole sandbox: numpy's threads and a few children
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_COUNTER = itertools.count()


@functools.cache
def bwrap() -> str | None:
    """The bubblewrap binary, if it is installed and can make namespaces here."""
    found = shutil.which("bwrap")
    if found is None:
        return None
    try:
        done = subprocess.run([found, "--unshare-all", "--die-with-parent", "--ro-bind", "/",
                               "/", "--", "/bin/true"], capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return found if done.returncode == 0 else None


def describe(sandboxed: bool = True) -> str:
    """What an isolated candidate runs in, for the run's header and report."""
    if not sandboxed or bwrap() is None:
        why = "" if bwrap() is not None else (" (bubblewrap is not installed or cannot make "
                                              "namespaces here: scripts/setup.sh installs it)")
        return (f"plain processes with an address-space limit{why}: they can reach the "
                "files, the network and the processes of this user, the harness included")
    limits = "process and memory limits on the whole tree" if _cgroup_parents() else \
        "an address-space limit per process (no writable cgroups here)"
    return f"a bubblewrap sandbox (own PID and network namespaces, private /tmp; {limits})"


@functools.cache
def _cgroup_parents() -> tuple[Path, Path] | None:
    """The cgroup v1 folders a sandbox's own groups go under (pids, memory), if writable."""
    pids = _CGROUP_ROOT / "pids"
    memory = _CGROUP_ROOT / "memory"
    own = _own_cgroup("memory")
    if own is not None:
        memory = memory / own.lstrip("/")
    for folder in (pids, memory):
        probe = folder / f"mybackprop-probe-{os.getpid()}"
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError:
            return None
    return pids, memory


def _own_cgroup(controller: str) -> str | None:
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return path
    except OSError:
        pass
    return None


class Sandbox:
    """One sandboxed process: its command line, its cgroups, and how to end all of it."""

    def __init__(self, argv: list[str], visible: list[Path], hidden: list[Path],
                 memory_limit: int) -> None:
        self.groups: list[Path] = []
        parents = _cgroup_parents()
        prefix: list[str] = []
        if parents is not None:
            _remove_stale(parents)
            name = f"mybackprop-{os.getpid()}-{next(_COUNTER)}"
            pids, memory = (parent / name for parent in parents)
            pids.mkdir()
            memory.mkdir()
            (pids / "pids.max").write_text(str(MAX_PROCESSES))
            (memory / "memory.limit_in_bytes").write_text(str(memory_limit))
            self.groups = [pids, memory]
            # the shell joins both groups, then becomes bubblewrap: everything after is inside
            joins = " && ".join(f"echo $$ > {g / 'cgroup.procs'}" for g in self.groups)
            prefix = ["/bin/sh", "-c", f'{joins} && exec "$@"', "sh"]
        # a hidden folder inside a visible one is covered by an empty tmpfs, which needs the
        # folder to exist: one that does not yet (the run folder, made after the candidates
        # load) is made now, and removed again at the end if it stayed empty
        self.made: list[Path] = []
        for path in hidden:
            if not path.exists() and any(path.is_relative_to(v) for v in visible):
                missing = [p for p in (path, *path.parents) if not p.exists()]
                path.mkdir(parents=True)
                self.made += missing
        self.argv = prefix + _bwrap_argv(visible, hidden) + argv

    def kill(self) -> None:
        """End every process of the sandbox and remove its groups."""
        for group in self.groups:
            try:
                for pid in (group / "cgroup.procs").read_text().split():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            except OSError:
                pass
        for group in self.groups:
            for _ in range(50):
                try:
                    group.rmdir()
                    break
                except OSError:
                    time.sleep(0.02)
        self.groups = []
        for path in self.made:  # deepest first
            try:
                path.rmdir()
            except OSError:
                pass
        self.made = []


def _remove_stale(parents: tuple[Path, Path]) -> None:
    """Remove the empty groups of harnesses that died without removing theirs (kill -9)."""
    for parent in parents:
        for group in parent.glob("mybackprop-*-*"):
            try:
                os.kill(int(group.name.split("-")[1]), 0)  # its harness lives: leave it
            except ProcessLookupError:
                try:
                    group.rmdir()  # refused while a process is still in it
                except OSError:
                    pass
            except (ValueError, PermissionError):
                pass


def _bwrap_argv(visible: list[Path], hidden: list[Path]) -> list[str]:
    binary = bwrap()
    assert binary is not None
    argv = [binary, "--unshare-all", "--die-with-parent", "--new-session",
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", "/tmp/work",
            "--chdir", "/tmp/work", "--setenv", "HOME", "/tmp/work",
            "--setenv", "TMPDIR", "/tmp"]
    system = [Path(p) for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc")]
    python = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent}
    packages = {Path(__file__).resolve().parents[1]}  # mybackprop
    # mybackprop.oracles: an editable install keeps it outside the package (the repository's
    # oracles/). Found, not imported: the worker itself never loads the oracles.
    found = importlib.util.find_spec("mybackprop.oracles")
    if found is not None and found.origin:
        packages.add(Path(found.origin).resolve().parent)
    done: set[Path] = set()
    for path in [*system, *sorted(python), *sorted(packages), *visible]:
        if path in done or not os.path.lexists(path):
            continue
        done.add(path)
        if path.is_symlink() and path in system:
            argv += ["--symlink", os.readlink(path), str(path)]
        else:
            argv += ["--ro-bind", str(path), str(path)]
    for path in hidden:  # the run folder, where a bound folder would show it
        if path.exists() and any(path.is_relative_to(v) for v in done):
            argv += ["--tmpfs", str(path)]
    return [*argv, "--"]
