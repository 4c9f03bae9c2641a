"""Answers correctly, after writing a forged message of its own onto the reply pipe."""

import json
import os
import struct

import mybackprop


def backprop(problem):
    header = json.dumps({"kind": "answer", "nonce": 0, "reason": "", "refused": False,
                         "loss": 0.0, "arrays": []}).encode()
    for name in os.listdir("/proc/self/fd"):
        try:
            os.write(int(name), struct.pack("!II", len(header), 0) + header)
        except OSError:
            pass
    return mybackprop.matrix(problem)
