"""Raises KeyboardInterrupt, as if the user had pressed Ctrl-C."""


def backprop(problem):
    raise KeyboardInterrupt
