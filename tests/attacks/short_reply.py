"""Writes the start of a reply (lengths promising more) and then nothing, holding the pipe open:
a parent that waits only for the first byte would wait forever."""

import os
import struct
import time


def backprop(problem):
    for name in os.listdir("/proc/self/fd"):
        try:
            os.write(int(name), struct.pack("!II", 20, 1000) + b'{"kind": "ans')
        except OSError:
            pass
    time.sleep(3600)
