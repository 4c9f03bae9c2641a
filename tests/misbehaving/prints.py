import mybackprop as mb


def backprop(problem):
    print("loss is", 0.5)
    return mb.matrix(problem)
