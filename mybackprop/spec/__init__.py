"""The spec: what a case is. The declarative table of activations, losses and reductions
(forward, derivative, kinks, domain, oracle spellings; ``table``) and the problem a candidate is
handed with the gradients it returns (``problem``). Everything else reads these.

May import: nothing of mybackprop's.
"""
