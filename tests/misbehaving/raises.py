def backprop(problem):
    raise ValueError("boom")
