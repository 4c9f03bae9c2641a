"""Reports of a run folder: records and summaries (``records``, with the summary's JSON
schema), Markdown and self-contained HTML (``html`` and its template), the comparison of two runs
(``diff``) and standalone repro scripts (``repro``).

May import: spec, levels, judging, oracles, diagnosis, harness.
"""
