import ctypes


def backprop(problem):
    ctypes.string_at(0)
