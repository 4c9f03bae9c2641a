import sys


def backprop(problem):
    sys.exit(3)
