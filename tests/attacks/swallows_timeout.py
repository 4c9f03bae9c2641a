"""Swallows every Exception, the time limit's too, and sleeps on forever."""

import time


def backprop(problem):
    while True:
        try:
            time.sleep(0.5)
        except Exception:
            pass
