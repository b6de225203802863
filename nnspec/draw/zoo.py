"""The zoo: every network of a folder as one poster in the chart's grid, and as one web page.

`make_zoo(files, out)` takes the spec files `nnspec.model.zoo_files` read and checked. An `out`
ending in .svg, .png or .pdf is the poster alone, in that format; any other `out` is a folder,
and gets:
  zoo.svg, zoo.png, zoo.pdf   the poster: every network on one grid, the legend on top
  NAME.svg                    each file's networks (a GAN pair stays together)
  index.html                  a static page: each diagram with its spec, parameter count,
                              and its trained result when `runs/NAME/metrics.csv` exists
"""

from __future__ import annotations

import contextlib
import csv
import html
import math
import os
from dataclasses import dataclass
from pathlib import Path

from .output import DPI, FORMATS, DrawError, check_orient, choose_palette, write_atomic
from .page import (
    Drawable,
    Tile,
    entries,
    entry_scene,
    legend,
    taken,
    tile_size,
    tiles,
    with_legend,
)
from .render import render
from .scene import P_INCHES, Scene, text

# The chart's networks in its order (the Neural Network Zoo, van Veen and Leijnen 2016), each with
# the bundled specs that draw it; a file named in none comes after them all, in file order.
CHART: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("P", ("perceptron_and", "perceptron_or", "perceptron_nand", "perceptron_xor", "xor_gates")),
    ("FF", ("ff", "xor")),
    ("RBF", ("rbf", "rbf_xor")),
    ("DFF", ("dff",)),
    ("RNN", ("rnn", "elman", "jordan", "rnn_adding")),
    ("LSTM", ("lstm",)),
    ("GRU", ("gru",)),
    ("AE", ("autoencoder",)),
    ("VAE", ("vae",)),
    ("DAE", ("dae",)),
    ("SAE", ("sae",)),
    ("MC", ("markov",)),
    ("HN", ("hopfield", "hopfield_capacity")),
    ("BM", ("boltzmann",)),
    ("RBM", ("rbm",)),
    ("DBN", ("dbn",)),
    ("DCN", ("lenet",)),
    ("DN", ("dn",)),
    ("DCIGN", ("dcign",)),
    ("GAN", ("gan",)),
    ("LSM", ("lsm",)),
    ("ELM", ("elm",)),
    ("ESN", ("esn",)),
    ("DRN", ("drn", "drn_plain", "residual")),
    ("DNC", ("dnc",)),
    ("NTM", ("ntm",)),
    ("CN", ("capsules",)),
    ("KN", ("som",)),
    ("AN", ("an", "attention")),
)
_PLACE = {stem: place for place, stem in enumerate(s for _, stems in CHART for s in stems)}
PAGE_ASPECT = math.sqrt(2)  # the poster's height over its width, nearest it: an ISO page
SHEET = (23.39, 33.11)  # inches: the A1 sheet the poster fits at its own scale when it can
HEADER = 3.5  # P: about the title's, the subtitle's and the legend's height above the tiles
POSTER_PIXELS = 6000  # the longest side of the poster's PNG, at most
WIDE = 14.0  # P: a diagram wider than this takes two columns of the web page


@dataclass(frozen=True)
class ZooFile:
    """One spec file of the zoo: its path, its text (shown on the page) and its networks."""

    path: Path
    text: str
    networks: tuple[Drawable, ...]


@dataclass(frozen=True)
class Entry:
    """One diagram of the zoo: a network, or a GAN's generator and discriminator, from one file."""

    path: Path
    source: str
    networks: list[Drawable]
    slug: str  # the file name of its diagram, without .svg


def make_zoo(
    files: list[ZooFile],
    out: str | os.PathLike,
    *,
    runs: str | os.PathLike = "runs",
    palette: str = "asimov",
    annotate: bool = False,
    orient: str = "lr",
) -> list[Path]:
    """The poster, one SVG per entry, and index.html of `files`, written into the folder `out`;
    or the poster alone when `out` names a picture (`poster.png`)."""
    chosen = choose_palette(palette)
    check_orient(orient)
    zoo = zoo_entries(files)
    out = Path(out)
    options = {"annotate": annotate, "orient": orient}
    tiles = [entry_scene(e.networks, scope=e.slug, compact=True, **options) for e in zoo]
    picture = out.suffix.lower().lstrip(".")
    if picture in FORMATS:
        scene, dpi = _poster(zoo, tiles)
        return [write_atomic(out, render(scene, chosen, picture, dpi))]
    panels = [entry_scene(e.networks, scope=e.slug, **options) for e in zoo]  # the full view
    files = {
        out / f"{entry.slug}.svg": render(with_legend(panel), chosen, "svg")
        for entry, panel in zip(zoo, panels, strict=True)
    }
    scene, dpi = _poster(zoo, tiles)
    files |= {out / f"zoo.{fmt}": render(scene, chosen, fmt, dpi) for fmt in FORMATS}
    wide = {entry.slug for entry, panel in zip(zoo, panels, strict=True) if _width(panel) > WIDE}
    files[out / "index.html"] = page_html(zoo, Path(runs), wide).encode()
    return _write_all(files, out)


def _write_all(files: dict[Path, bytes], out: Path) -> list[Path]:
    """Write every file (each whole, or not at all); when one cannot be written (a full disk),
    a folder `out` made for them is removed again with what went into it, so that a zoo is not
    left half made where there was none."""
    made = not out.exists()
    written = []
    try:
        for path, data in files.items():
            written.append(write_atomic(path, data))
    except (DrawError, KeyboardInterrupt):
        if made:
            with contextlib.suppress(OSError):
                for path in written:
                    path.unlink(missing_ok=True)
                out.rmdir()
        raise
    return written


def _poster(zoo: list[Entry], panels: list[Scene]) -> tuple[Scene, float]:
    """The poster's scene, and the dpi that keeps its PNG within POSTER_PIXELS."""
    scene, _ = poster(
        panels,
        title="nnspec zoo",
        subtitle=f"{_count(zoo)} networks, drawn from their .nn specs",
    )
    x0, y0, x1, y1 = scene.bounds()
    return scene, min(DPI, POSTER_PIXELS / (max(x1 - x0, y1 - y0) * P_INCHES))


def zoo_entries(files: list[ZooFile]) -> list[Entry]:
    """The diagrams of every file, in the chart's order (`CHART`), then the files it does not
    name in file order; a file of several units gets one per unit, in its order."""
    found = []
    for file in sorted(files, key=lambda file: _PLACE.get(file.path.stem, len(_PLACE))):
        groups = entries(list(file.networks))
        for group in groups:
            slug = file.path.stem if len(groups) == 1 else f"{file.path.stem}-{group[0].name}"
            found.append(Entry(file.path, file.text, group, slug))
    return found


def _width(scene: Scene) -> float:
    x0, _, x1, _ = scene.bounds()
    return x1 - x0


def _count(zoo: list[Entry]) -> int:
    return sum(len(entry.networks) for entry in zoo)


def poster_columns(panels: list[Scene], size: tuple[float, float]) -> int:
    """How many tiles of `size` to a row, counting the tiles each panel takes: a page that fits
    an A1 sheet at the drawing's own scale, portrait if one does (its shape nearest an ISO
    page's), else landscape; else the one that needs the least shrinking to fit."""
    width, height = size
    count = sum(math.prod(taken(panel, size)) for panel in panels)
    short, long = (side / P_INCHES for side in SHEET)

    def key(columns: int) -> tuple[float, bool, float]:
        w, h = columns * width, math.ceil(count / columns) * height + HEADER
        shrink = max(1.0, max(w, h) / long, min(w, h) / short)  # to fit the sheet
        return shrink, w > h, abs(math.log(max(w, h) / min(w, h) / PAGE_ASPECT))

    return min(range(1, count + 1), key=key)


def poster(panels: list[Scene], title: str, subtitle: str) -> tuple[Scene, list[Tile]]:
    """The chart's layout: a title, the legend, then every network in tiles of one size, in
    order, row by row (`page.tiles`); the scene and each panel's tiles."""
    size = tile_size(panels)
    columns = poster_columns(panels, size)
    body, placed = tiles(panels, columns, size)
    middle = columns * size[0] / 2
    key = legend(body, columns * size[0])
    k0, k1 = key.bounds()[0], key.bounds()[2]
    key_height = key.bounds()[3] - key.bounds()[1]
    scene = Scene(list(body.shapes))
    top = 0.4 + key_height  # the tiles' top is at 0
    scene.extend(key.moved(middle - (k0 + k1) / 2, top - key.bounds()[3]))
    scene.add(text(middle, top + 0.5, subtitle, 10, "above", color="#444444"))
    scene.add(text(middle, top + 1.1, title, 22, "above", bold=True))
    return scene, placed


# ---- the web page ---------------------------------------------------------------------------
def trained_result(entry: Entry, runs: Path) -> str:
    """The last row of the entry's `runs/NAME/metrics.csv` (by network name, then file name), or
    'not trained yet'."""
    for name in [network.name for network in entry.networks] + [entry.path.stem]:
        metrics = runs / name / "metrics.csv"
        if metrics.is_file():
            return _last_row(metrics)
    return "not trained yet"


def _last_row(metrics: Path) -> str:
    try:
        with metrics.open(newline="", encoding="utf-8") as file:
            rows = [row for row in csv.reader(file) if row]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        return f"run found, but {metrics} cannot be read ({error})"
    if len(rows) < 2:
        return "training started: no epoch finished yet"
    header, last = rows[0], rows[-1]
    values = dict(zip(header, last, strict=False))
    epoch = values.pop("epoch", None)
    shown = ", ".join(f"{key} {_number(value)}" for key, value in values.items())
    return (f"epoch {epoch}: " if epoch is not None else "") + shown


def _number(value: str) -> str:
    try:
        return f"{float(value):.4g}"
    except ValueError:
        return value


def page_html(zoo: list[Entry], runs: Path, wide: set[str] = frozenset()) -> str:
    """A static page like the chart: a card per network with its diagram, spec, size and result."""
    cards = "\n".join(_card(entry, runs, entry.slug in wide) for entry in zoo)
    return _PAGE.format(count=_count(zoo), cards=cards)


def _card(entry: Entry, runs: Path, wide: bool) -> str:
    names = " + ".join(network.name for network in entry.networks)
    description = " / ".join(n.description for n in entry.networks if n.description)
    if len(entry.networks) == 1:
        params = f"{entry.networks[0].program.param_count:,} parameters"
    else:
        params = (
            ", ".join(
                f"{role} {m.program.param_count:,}"
                for role, m in zip(("generator", "discriminator"), entry.networks, strict=True)
            )
            + " parameters"
        )
    e = html.escape
    return _CARD.format(
        slug=e(entry.slug),
        name=e(names),
        description=e(description),
        params=e(params),
        wide=" wide" if wide else "",
        result=e(trained_result(entry, runs)),
        file=e(entry.path.name),
        source=spec_html(entry.source),
    )


def spec_html(source: str) -> str:
    """The spec's text as the page shows it, under its card: a `<pre>` block, escaped and
    highlighted by nnspec's Pygments lexer (inline colours: the page needs no style sheet for
    them). The one place the page renders a spec."""
    from ..lexer import highlight_html

    return highlight_html(source, inline=True)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>nnspec zoo</title>
<link rel="icon" href="data:,">
<style>
body {{ font-family: "DejaVu Sans", Verdana, sans-serif; margin: 2rem;
        color: #222; background: #fff; }}
header {{ text-align: center; margin-bottom: 2rem; }}
h1 {{ margin: 0; font-size: 2rem; }}
.zoo {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 1.5rem; }}
.card {{ border: 1px solid #ddd; border-radius: 8px; padding: 1rem;
         display: flex; flex-direction: column; }}
.card figure {{ flex: 1; margin: 0; display: flex; align-items: center; }}
.card h2 {{ margin: 0; font-size: 1.2rem; }}
.card p {{ margin: 0.3rem 0; }}
.card.wide {{ grid-column: span 2; }}
.card img {{ max-width: 100%; height: auto; margin: 0.5rem auto; display: block; }}
.facts {{ font-size: 0.9rem; color: #444; }}
pre {{ background: #f6f6f6; padding: 0.6rem; overflow-x: auto; font-size: 0.8rem; }}
</style>
</head>
<body>
<header>
<h1>nnspec zoo</h1>
<p>{count} networks, each drawn from the same .nn file that trains it.
Poster: <a href="zoo.svg">SVG</a> · <a href="zoo.png">PNG</a> · <a href="zoo.pdf">PDF</a></p>
</header>
<main class="zoo">
{cards}
</main>
</body>
</html>
"""

_CARD = """<article class="card{wide}" id="{slug}">
<h2>{name}</h2>
<figure><img src="{slug}.svg" alt="diagram of {name}: {description}"></figure>
<p class="facts">{params} · <span class="result">{result}</span></p>
<details><summary>spec: {file}</summary>{source}</details>
</article>"""
