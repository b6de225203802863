"""`python -m nnspec`: the same as the `nnspec` command."""

from .cli import run

run()
