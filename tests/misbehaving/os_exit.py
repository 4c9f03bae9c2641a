import os


def backprop(problem):
    os._exit(7)
