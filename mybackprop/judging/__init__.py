"""How an answer is judged, with no framework in sight: the roundoff-based error bounds of
every gradient element (``tolerance``), measured at the input by stochastic arithmetic for a
float32 candidate (``stochastic``), and for one layer checked alone (``layers``), the one
comparison path (``compare``), and the kink conventions that make a difference a convention
rather than a bug (``kinks``).

May import: spec, levels.
"""
