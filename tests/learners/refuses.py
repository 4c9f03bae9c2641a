"""A candidate that refuses what it was not written for, the way real code does."""
import mybackprop


def everything(problem):
    raise mybackprop.Unsupported("only the MNIST network, 784-100-10")


def deep_networks(problem):
    if problem.architecture.depth > 1:
        raise NotImplementedError("more than one layer")
    return mybackprop.matrix(problem)
