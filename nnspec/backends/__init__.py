"""Backends: the checked program lowered to PyTorch (`backends.torch`) or to NumPy
(`backends.numpy`).

Both read the same `Plan` (what runs over whole sequences, what steps through time) and start
from the same parameters (`initial_params`), so they agree to the last digits.
"""
