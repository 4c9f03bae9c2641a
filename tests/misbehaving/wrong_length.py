import mybackprop as mb


def backprop(problem):
    answer = mb.matrix(problem)
    answer["dW"] = answer["dW"][:-1]
    return answer
