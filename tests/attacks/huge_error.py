"""Answers with one weight gradient off by 1e300: errors over tolerance overflow to infinity."""

import mybackprop


def backprop(problem):
    answer = mybackprop.matrix(problem)
    answer["dW"][0] = answer["dW"][0] + 1e300
    return answer


backprop.supports = {"dtypes": ["float64"]}
