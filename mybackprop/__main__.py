"""python -m mybackprop: the same as the mybackprop command."""

import sys

from mybackprop.cli import entry

sys.exit(entry())
