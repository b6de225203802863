"""nnspec's version: one place, read by the command line (`--version`) and written into what
nnspec compiles."""

__version__ = "0.1.0"
