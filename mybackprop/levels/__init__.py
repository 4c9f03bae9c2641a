"""The three levels of the chain rule, in NumPy: element (one weight at a time, with loops),
vector (one sample at a time, with outer products) and matrix (the whole batch at once). Each is
a candidate like any other; ``matrix.forward`` is also the forward pass the other rooms reuse.

May import: spec.
"""
