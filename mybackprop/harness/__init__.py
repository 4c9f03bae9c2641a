"""The harness: one case from start to verdict. The plug-in contract (``contract``), loading
candidates (``loading``) and isolating them (``isolate``, ``worker``, ``sandbox``, ``wire``),
drawing random cases (``cases``, ``strategies``), the run settings built at the door
(``settings``), the supervisor that decides a check's exit code (``supervise``), the runner that
feeds a case to the oracles and the candidate and ends in one verdict (``runner``), having
measured how the candidate writes an activation people write two ways (``formulation``), shrinking a
failure to the smallest case that keeps its diagnosis (``shrink``), and layer kits: a user's own
layer functions or objects declared once (``layers``) and checked one layer at a time
(``layer_check``).

May import: spec, levels, judging, oracles, diagnosis.
"""
