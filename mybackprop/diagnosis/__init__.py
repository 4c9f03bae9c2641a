"""Diagnosis of a failing answer: where the gradient first goes wrong (layer, parameter,
element) and what kind of mistake it is (the patterns and slips).

May import: spec, levels, judging.
"""
