import mybackprop as mb


def backprop(problem):
    answer = mb.matrix(problem)
    answer["dW"] = [dw.T for dw in answer["dW"]]
    return answer
