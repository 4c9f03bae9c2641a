"""What an isolated worker sends the parent: data only, never a pickle.

A message is two lengths (header, payload), a JSON header and raw array bytes. The parent reads
it against a deadline that covers the whole message, refuses anything malformed, short, long or
extra, and rebuilds an answer only from arrays whose names, dtypes and shapes are exactly those
the problem asks for. Whatever the candidate's process writes, the parent runs none of it: the
worst a forged reply can be is a wrong answer, which is what a candidate may return anyway.
(The parent's requests to the worker are its own pickles: the trusted side writes them.)
"""

from __future__ import annotations

import json
import math
import os
import select
import struct
import time
from typing import Any

import numpy as np

from mybackprop.spec.problem import Gradients, Problem

_LENGTHS = struct.Struct("!II")  # header bytes, payload bytes
MAX_HEADER = 1 << 20  # a header names a few hundred arrays at most
INTERMEDIATES = ("Z", "A", "delta")


class ProtocolError(Exception):
    """A reply the parent refuses: the case is an error and the worker is replaced."""


def _number(x: float) -> float | str:
    """JSON has no NaN or infinities: those travel as their names."""
    return x if math.isfinite(x) else repr(x)


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProtocolError(f"{what} is not a number")
    if isinstance(value, str):
        if value not in ("nan", "inf", "-inf"):
            raise ProtocolError(f"{what} is not a number")
        return float(value)
    return float(value)


def encode(header: dict[str, Any], arrays: list[tuple[str, np.ndarray]] = ()) -> bytes:
    """One message: the header (with each array's name, dtype and shape) and the arrays' bytes."""
    header = {**header, "arrays": [[name, a.dtype.name, list(a.shape)] for name, a in arrays]}
    text = json.dumps(header, allow_nan=False).encode()
    payload = b"".join(np.ascontiguousarray(a).tobytes() for _, a in arrays)
    return _LENGTHS.pack(len(text), len(payload)) + text + payload


def encode_answer(nonce: int, answer: Gradients | None, reason: str, refused: bool) -> bytes:
    arrays: list[tuple[str, np.ndarray]] = []
    loss: float | str | None = None
    if answer is not None:
        loss = _number(float(answer.loss))
        arrays += [(f"dW{l}", w) for l, w in enumerate(answer.dW, start=1)]
        arrays += [(f"db{l}", b) for l, b in enumerate(answer.db, start=1) if b is not None]
        if answer.dX is not None:
            arrays.append(("dX", answer.dX))
        for kind in INTERMEDIATES if answer.intermediates is not None else ():
            arrays += [(f"{kind}{l}", a) for l, a in
                       enumerate(answer.intermediates[kind], start=1)]  # type: ignore[index]
    return encode({"kind": "answer", "nonce": nonce, "reason": reason, "refused": refused,
                   "loss": loss}, arrays)


def read(fd: int, seconds: float | None, max_payload: int, max_header: int = MAX_HEADER
         ) -> tuple[dict[str, Any], bytes]:
    """The next message on `fd`, whole, within `seconds` (None: no limit). Raises TimeoutError
    when the time runs out, EOFError when the writer is gone before a message starts, and
    ProtocolError for anything else that is not one well-formed message."""
    deadline = None if seconds is None else time.monotonic() + seconds
    lengths = _read_exactly(fd, _LENGTHS.size, deadline, start=True)
    header_size, payload_size = _LENGTHS.unpack(lengths)
    if header_size > max_header or payload_size > max_payload:
        raise ProtocolError(f"a reply of {header_size} + {payload_size} bytes, more than the "
                            f"answer can take ({max_header} + {max_payload})")
    raw = _read_exactly(fd, header_size, deadline)
    try:
        header = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ProtocolError("a reply whose header is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str) \
            or not isinstance(header.get("arrays", []), list):
        raise ProtocolError("a reply whose header is not a message")
    return header, _read_exactly(fd, payload_size, deadline)


def _read_exactly(fd: int, size: int, deadline: float | None, start: bool = False) -> bytes:
    chunks, got = [], 0
    while got < size:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            raise TimeoutError
        chunk = os.read(fd, min(size - got, 1 << 20))
        if not chunk:
            if start and got == 0:
                raise EOFError
            raise ProtocolError(f"a reply cut short: {got} of {size} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def pending(fd: int) -> bool:
    """Whether the worker wrote anything more after its reply (it must not)."""
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def expected_arrays(problem: Problem) -> dict[str, tuple[int, ...]]:
    """Every array an answer to `problem` may hold, by name, with its one allowed shape."""
    arch = problem.architecture
    shapes: dict[str, tuple[int, ...]] = {}
    for l, (w, b) in enumerate(zip(problem.weights, problem.biases, strict=True), start=1):
        shapes[f"dW{l}"] = w.shape
        if b is not None:
            shapes[f"db{l}"] = b.shape
    shapes["dX"] = problem.X.shape
    for kind in INTERMEDIATES:
        for l, width in enumerate(arch.widths[1:], start=1):
            shapes[f"{kind}{l}"] = (problem.batch_size, width)
    return shapes


def max_payload(problem: Problem) -> int:
    """The most bytes an answer to `problem` can take (float64, every array)."""
    return 8 * sum(math.prod(shape) for shape in expected_arrays(problem).values())


def decode_answer(header: dict[str, Any], payload: bytes, problem: Problem, nonce: int
                  ) -> tuple[Gradients | None, str, bool]:
    """(answer, reason, refused) from a checked message, or ProtocolError."""
    if header.get("kind") != "answer" or header.get("nonce") != nonce:
        raise ProtocolError("a reply that is not the answer to this case")
    reason, refused = header.get("reason"), header.get("refused")
    if not isinstance(reason, str) or not isinstance(refused, bool):
        raise ProtocolError("a reply without its reason")
    shapes, dtype = expected_arrays(problem), problem.dtype
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for entry in header["arrays"]:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and isinstance(entry[2], list)):
            raise ProtocolError("a reply whose arrays are not (name, dtype, shape)")
        name, kind, shape = entry[0], entry[1], tuple(entry[2])
        if name not in shapes or name in arrays:
            raise ProtocolError(f"a reply with an array {name[:40]!r} the problem has no place for")
        if kind != dtype.name or shape != shapes[name]:
            raise ProtocolError(f"a reply whose {name} is {kind[:20]} {shape}, not "
                                f"{dtype.name} {shapes[name]}")
        size = math.prod(shape) * dtype.itemsize
        arrays[name] = np.frombuffer(payload, dtype=dtype, count=math.prod(shape),
                                     offset=offset).reshape(shape).copy() if size else \
            np.zeros(shape, dtype)
        offset += size
    if offset != len(payload):
        raise ProtocolError(f"a reply of {len(payload)} payload bytes for arrays of {offset}")
    if header.get("loss") is None:
        if arrays:
            raise ProtocolError("a reply with arrays and no loss")
        return None, reason, refused
    depth = problem.architecture.depth
    if any(f"dW{l}" not in arrays for l in range(1, depth + 1)) or any(
            (f"db{l}" in arrays) != (b is not None)
            for l, b in enumerate(problem.biases, start=1)):
        raise ProtocolError("a reply without every dW and db")
    present = {k for k in INTERMEDIATES if any(n.startswith(k) and n[len(k):].isdigit()
                                               for n in arrays)}
    if present and any(f"{k}{l}" not in arrays for k in INTERMEDIATES
                       for l in range(1, depth + 1)):
        raise ProtocolError("a reply with some intermediates and not all")
    return Gradients(
        _float(header["loss"], "the loss"), [arrays[f"dW{l}"] for l in range(1, depth + 1)],
        [arrays.get(f"db{l}") for l in range(1, depth + 1)], arrays.get("dX"),
        {k: [arrays[f"{k}{l}"] for l in range(1, depth + 1)] for k in INTERMEDIATES}
        if present else None), reason, refused
