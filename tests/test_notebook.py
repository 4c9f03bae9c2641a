"""mybackprop in a notebook, as a learner uses it: a real Jupyter kernel runs a notebook that
defines a backprop in a cell and checks it with mybackprop.check, and the report shows inline."""

from __future__ import annotations

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install 'mybackprop[test]'")
nbclient = pytest.importorskip("nbclient", reason="pip install 'mybackprop[test]'")

LEARNER = '''import numpy as np
import mybackprop


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def backprop(problem, forget_the_mean=False):
    X, Y = problem.X, problem.Y
    divisor = {"mean": Y.size, "batch_mean": len(Y), "sum": 1}[problem.reduction]
    A = [X]
    for W, b in zip(problem.weights, problem.biases):
        A.append(sigmoid(A[-1] @ W.T + (b if b is not None else 0)))
    loss = np.sum((A[-1] - Y) ** 2) / divisor
    G = 2 * (A[-1] - Y) / (1 if forget_the_mean else divisor)
    dW, db = [], []
    for W, b, A_prev, A_l in zip(problem.weights[::-1], problem.biases[::-1], A[-2::-1], A[:0:-1]):
        delta = G * A_l * (1 - A_l)
        dW.insert(0, delta.T @ A_prev)
        db.insert(0, delta.sum(axis=0) if b is not None else None)
        G = delta @ W
    return {"loss": loss, "dW": dW, "db": db, "dX": G}


backprop.supports = {"activations": ["sigmoid"], "losses": ["mse"]}


def summed(problem):
    return backprop(problem, forget_the_mean=True)


summed.supports = backprop.supports
'''


def test_a_notebook_checks_a_function_and_shows_the_report_inline(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(LEARNER),
        nbformat.v4.new_code_cell("mybackprop.check(backprop, cases=40, quiet=True)"),
        nbformat.v4.new_code_cell("result = mybackprop.check(summed, cases=40, quiet=True)\n"
                                  "result"),
        nbformat.v4.new_code_cell("print(repr(result))\n"
                                  "print(result.status, result.verdicts['fail'], "
                                  "result.folder.name)"),
    ]
    nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    good, bad, text = (cell.outputs for cell in notebook.cells[1:])

    html = next(o for o in good if o.output_type == "execute_result").data["text/html"]
    assert "PASS: 40 checked cases pass" in html and "backprop" in html

    html = next(o for o in bad if o.output_type == "execute_result").data["text/html"]
    assert "FAIL" in html and "constant_factor" in html
    assert "times the right value" in html
    assert "smallest" in html and "report.html" in html

    printed = "".join(o.text for o in text if o.output_type == "stream")
    assert "constant_factor" in printed and "first: case" in printed
    assert printed.strip().splitlines()[-1].startswith("fail ")
    assert list((tmp_path / "reports").glob("*/report.html"))  # the run folder, beside it
