"""The helper process of `plot.Plots`: loads matplotlib while a run trains, then draws its plots.

`Plots` runs this file by its path, not as `-m nnspec.training.plot_helper`: `-m` would run the
`__init__` of `nnspec` and of `nnspec.training` first, that is the whole front end (lark,
networkx, pydantic, the kinds), which the plots do not need (`plot.py` imports only NumPy,
matplotlib and `nnspec.atomic`), and which cost about 0.45 s of CPU per run on a core the run
shares. Run by path, it stands in empty packages for the two, so that the import of
`nnspec.training.plot` runs no `__init__`.
"""

import sys
import types
from pathlib import Path

if not __package__:  # run by path (as Plots does); under -m the packages are loaded already
    here = Path(__file__).resolve().parent
    sys.path = [p for p in sys.path if Path(p or ".").resolve() != here]  # no `import plot`
    for name, folder in (("nnspec", here.parent), ("nnspec.training", here)):
        package = types.ModuleType(name)
        package.__path__ = [str(folder)]
        sys.modules[name] = package

from nnspec.training.plot import serve  # noqa: E402 - after the packages stood in

serve()
