"""The helper process of `plot.Plots`: loads matplotlib while a run trains, then draws its plots."""

from .plot import serve

serve()
