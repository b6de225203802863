"""Writes examples/iris.csv, the data of examples/iris_csv.nn: 150 flowers of three species,
50 each, with four measurements in centimetres and the species as text.

The rows are synthetic, not Fisher's Iris measurements: each species' measurements are drawn from
independent normal distributions whose means and deviations are close to those of the real data
(as commonly quoted), rounded to a millimetre, with a fixed seed, so the file is the same on
every run. Run from the project's root: `python examples/make_iris_csv.py`.
"""

from pathlib import Path

import numpy as np

# species -> (mean, standard deviation) of sepal length, sepal width, petal length, petal width
SPECIES = {
    "setosa": ((5.0, 3.4, 1.5, 0.25), (0.35, 0.38, 0.17, 0.11)),
    "versicolor": ((5.9, 2.8, 4.3, 1.3), (0.52, 0.31, 0.47, 0.20)),
    "virginica": ((6.6, 3.0, 5.6, 2.0), (0.64, 0.32, 0.55, 0.27)),
}
COLUMNS = ("sepal_length", "sepal_width", "petal_length", "petal_width", "species")


def rows(seed: int = 1936) -> list[str]:
    """One line per flower, the species in turn: setosa, versicolor, virginica, setosa, ..."""
    rng = np.random.default_rng(seed)
    drawn = {
        name: np.clip(rng.normal(mean, std, size=(50, 4)), 0.1, None)
        for name, (mean, std) in SPECIES.items()
    }
    return [
        ",".join(f"{value:.1f}" for value in drawn[name][i]) + f",{name}"
        for i in range(50)
        for name in SPECIES
    ]


if __name__ == "__main__":
    path = Path(__file__).with_name("iris.csv")
    path.write_text("\n".join([",".join(COLUMNS), *rows()]) + "\n")
    print(f"wrote {path}")
