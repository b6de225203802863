"""Front-end benchmark: how the whole check (`nnspec.loads`) scales against lark's bare parse.

Generates specs of 100, 1,000 and 10,000 layers: a chain of `dense` layers (width 8,
`act=relu`) with a skip link around every few layers through an `add` merge, so the graph
is not a plain chain; plus one variant that places the same pattern as a `block` with
`repeat=N`. For each it measures (median of several runs, with `gc` left as the parser
leaves it: enabled for the bare parse, paused by nnspec during its own parse):

  (a) lark's bare parse of the same text with the same grammar (LALR, no transformer);
  (b) the whole check, `nnspec.loads(text)`.

Then it times the stages of the largest spec separately: parse (`load_library`), resolve
(`build_graph`) and check (`check`).

    python bench/frontend.py [--quick] [--json PATH] [--repeat N]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import lark

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nnspec  # noqa: E402
from nnspec.check import check  # noqa: E402
from nnspec.errors import Source  # noqa: E402
from nnspec.resolve import build_graph, load_library  # noqa: E402
from nnspec.shipped import grammar_text  # noqa: E402

WIDTH = 8
SEGMENT = 4  # dense layers between two add merges (each add also takes the skip link)


# ---- spec generators ---------------------------------------------------------------------------
def chain_spec(layers: int) -> str:
    """`layers` layers: input, then segments of SEGMENT dense layers closed by an add that also
    receives the segment's input (a skip link); dense layers fill up to exactly `layers`."""
    decls = [f"    input x: {WIDTH}"]
    links = []
    prev = "x"  # the value entering the current segment
    count, segment = 1, 0
    while count < layers:
        segment += 1
        last = prev
        for j in range(1, SEGMENT + 1):
            if count >= layers:
                break
            name = f"d{segment}_{j}"
            decls.append(f"    dense {name}: {WIDTH}, act=relu")
            links.append(f"    {last} -> {name}")
            last, count = name, count + 1
        if count < layers and last != prev:
            merge = f"m{segment}"
            decls.append(f"    add {merge}")
            links.append(f"    {last} -> {merge}")
            links.append(f"    {prev} -> {merge}")  # the skip link
            last, count = merge, count + 1
        prev = last
    body = "\n".join(decls + links)
    return (
        f"# generated: {layers} layers\n"
        f'network bench "generated chain with skip links" {{\n{body}\n}}\n'
    )


def block_spec(layers: int) -> str:
    """The same pattern as a block of SEGMENT dense layers + add, placed with repeat=N."""
    per_block = SEGMENT + 2  # the block's input port, SEGMENT dense layers, the add
    repeat = max(1, (layers - 2) // per_block)
    dense = "\n".join(f"    dense d{j}: width, act=relu" for j in range(1, SEGMENT + 1))
    chain = " -> ".join(["x"] + [f"d{j}" for j in range(1, SEGMENT + 1)] + ["s"])
    return (
        f"# generated: block with repeat={repeat}\n"
        "block seg(width) {\n"
        "    input x: width\n"
        f"{dense}\n"
        "    add s\n"
        f"    {chain}\n"
        "    x -> s\n"
        "}\n\n"
        'network bench "generated repeated block" {\n'
        f"    input x: {WIDTH}\n"
        f"    seg r: {WIDTH}, repeat={repeat}\n"
        f"    dense out: {WIDTH}, act=relu\n"
        "    x -> r -> out\n"
        "}\n"
    )


# ---- timing ----------------------------------------------------------------------------------
def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_parser() -> lark.Lark:
    return lark.Lark(grammar_text(), parser="lalr")


def measure(label: str, text: str, parser: lark.Lark, repeat: int) -> dict:
    model = nnspec.loads(text)  # warm up, and the real layer count (blocks expanded)
    parser.parse(text)
    parse_s = median_time(lambda: parser.parse(text), repeat)
    check_s = median_time(lambda: nnspec.loads(text), repeat)
    layers = len(model.program.layers)
    return {
        "spec": label,
        "layers": layers,
        "lines": text.count("\n"),
        "parse_s": parse_s,
        "check_s": check_s,
        "ratio": check_s / parse_s,
        "us_per_layer": check_s / layers * 1e6,
    }


def stages(text: str, repeat: int) -> dict:
    source = Source("<bench>", text)

    def parse_stage():
        return load_library(source)

    library = parse_stage()
    network = library.root.networks[0]
    graph = build_graph(library, network)
    out = {
        "parse_s": median_time(parse_stage, repeat),
        "resolve_s": median_time(lambda: build_graph(library, network), repeat),
        # check takes a fresh graph each time; building it is outside the timed part
        "check_s": _median_check(library, network, repeat),
        "whole_s": median_time(lambda: nnspec.loads(text), repeat),
    }
    del graph
    out["other_s"] = max(0.0, out["whole_s"] - out["parse_s"] - out["resolve_s"] - out["check_s"])
    return out


def _median_check(library, network, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        graph = build_graph(library, network)
        start = time.perf_counter()
        check(graph)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ---- report ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only 100 and 1,000 layers")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="runs per measurement (median); default 7, 3 for 10,000",
    )
    args = ap.parse_args(argv)

    sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    parser = bare_parser()
    rows = []
    for size in sizes:
        repeat = args.repeat or (7 if size < 10_000 else 5)
        rows.append(measure(f"chain {size}", chain_spec(size), parser, repeat))
    big = sizes[-1]
    rows.append(measure(f"block repeat ({big})", block_spec(big), parser, args.repeat or 5))

    print(
        f"nnspec front end: Python {platform.python_version()}, lark {lark.__version__}, "
        f"{platform.machine()}, gc {'on' if gc.isenabled() else 'off'}"
    )
    header = (
        f"{'spec':<22} {'layers':>7} {'lines':>7} {'bare parse s':>13} {'whole check s':>14} "
        f"{'check/parse':>12} {'us/layer':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['spec']:<22} {r['layers']:>7,} {r['lines']:>7,} {r['parse_s']:>13.4f} "
            f"{r['check_s']:>14.4f} {r['ratio']:>12.2f} {r['us_per_layer']:>9.1f}"
        )

    result = {
        "python": platform.python_version(),
        "lark": lark.__version__,
        "rows": rows,
    }
    by_size = {r["layers"]: r for r in rows if r["spec"].startswith("chain")}
    if 1_000 in by_size and 10_000 in by_size:
        growth_check = by_size[10_000]["check_s"] / by_size[1_000]["check_s"]
        growth_parse = by_size[10_000]["parse_s"] / by_size[1_000]["parse_s"]
        print(
            f"\ngrowth 1,000 -> 10,000 layers: whole check x{growth_check:.1f}, "
            f"bare parse x{growth_parse:.1f} (10 is linear)"
        )
        result["growth_check"] = growth_check
        result["growth_parse"] = growth_parse

    st = stages(chain_spec(big), args.repeat or 5)
    result["stages"] = {"layers": big, **st}
    print(f"\nstages of the {big:,}-layer chain (median):")
    for key, label in (
        ("parse_s", "parse   (load_library)"),
        ("resolve_s", "resolve (build_graph)"),
        ("check_s", "check   (check)"),
        ("other_s", "other   (train sections, model)"),
    ):
        print(f"  {label:<32} {st[key]:8.4f} s  {100 * st[key] / st['whole_s']:5.1f}%")
    print(f"  {'whole  (nnspec.loads)':<32} {st['whole_s']:8.4f} s")

    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
