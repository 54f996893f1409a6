"""``python -m capsim``: the same as the ``capsim`` command."""

import sys

from capsim.cli import command

sys.exit(command())
