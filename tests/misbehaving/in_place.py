import mybackprop as mb


def backprop(problem):
    answer = mb.matrix(problem)
    problem.X[...] = 0.0
    return answer
