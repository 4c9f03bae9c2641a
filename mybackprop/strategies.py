"""Hypothesis strategies for random backprop cases, built to shrink to the smallest network.

The public names of ``mybackprop.harness.strategies``; see there for how they draw and shrink.

    from hypothesis import given
    from mybackprop.strategies import problems

    @given(problems(max_depth=2, activations=["tanh", "relu"], kinks="hit"))
    def test_my_backprop(problem): ...
"""

from mybackprop.harness.strategies import architectures, case_configs, problem_or_reject, problems

__all__ = ["architectures", "case_configs", "problem_or_reject", "problems"]
