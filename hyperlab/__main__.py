"""``python -m hyperlab``: the same as the ``hyperlab`` command."""

from hyperlab.cli import run

run()
