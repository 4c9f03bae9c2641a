"""Answers correctly, slowly (0.3 s a call), after setting SIGINT, SIGTERM and SIGHUP to be ignored:
in-process, a run that neither Ctrl-C nor `kill` could stop."""

import signal
import time

import mybackprop


def backprop(problem):
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    time.sleep(0.3)
    return mybackprop.matrix(problem)
