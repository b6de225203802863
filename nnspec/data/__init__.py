"""Training data: the built-in datasets and the user's csv and npz files, shaped for one network.

    data = load_data(train_spec, program, base_dir)  # SpecError E502, E505, E506 at the data line
    data.train.inputs   # input name -> float32 array, batch first: [N, F], [N, C, H, W], [N, T, F]
    data.train.targets  # class indices (int64) or values (float32) as the output; a dict if several
    data.test           # the held-out part (`split`), or None
    data.classes, data.kind, data.info

docs/data.md describes every dataset and the rules that shape examples for a network.
"""

from .builtin import BUILTIN
from .load import Data, Split, load_data, read_inputs

__all__ = ["BUILTIN", "Data", "Split", "load_data", "read_inputs"]
