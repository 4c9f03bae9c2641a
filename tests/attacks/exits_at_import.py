"""Ends the process with exit code 0 while it is imported: in-process, one submission of a folder
that would stop the whole run before any other is judged."""

import sys

sys.exit(0)


def backprop(problem):  # never reached
    return None
