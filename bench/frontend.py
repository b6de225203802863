"""Front-end benchmark: how the whole check (`nnspec.loads`) scales, against lark's bare parse.

Generates specs of 100, 1,000 and 10,000 layers: a chain of `dense` layers (width 8,
`act=relu`) with a skip link around every few layers through an `add` merge, so the graph
is not a plain chain; plus one variant that places the same pattern as a `block` with
`repeat=N`. Each round measures, in CPU seconds of this process (`time.process_time`, so that
other work on a loaded machine counts less):

  (a) lark's bare parse of the same text with the same grammar (LALR, no transformer, `gc` on
      as lark leaves it);
  (b) the whole check, `nnspec.loads(text)`, with the model kept and then the young-generation
      collection that nnspec's paused collector leaves for later (`gc.collect(0)`), so that the
      deferred work is billed to it;
  (c) `nnspec check examples/xor.nn` in a fresh interpreter, against a fresh interpreter that
      only imports the modules that check loads apart from nnspec's own (its dependencies and
      the standard library), both in CPU seconds of the child (user + sys), with bytecode cached
      as an installed package has it (PYTHONPYCACHEPREFIX in a temporary folder).

Every sample starts from a collected heap (`gc.collect()`, not timed). A sample of a short run
is the mean of several back to back, as many as make about a second of CPU (70 whole checks of
the 100-layer chain, 7 of the 1,000-layer one, 1 of the 10,000-layer one), and a start-up sample
the mean of 3 child processes of each kind, taken in turn, so that one run's noise does not
decide a ratio. The imports are timed twice: in a plain interpreter (the target's reference)
and with the collector paused, as `import nnspec` pauses it, the stricter comparison. The
rounds interleave the measurements; the ratios the targets need are taken within each round,
then the median and the spread (lowest to highest) over the rounds are reported, with the
machine's load average.
With `--peer PYTHON`, each round also times the peer, Neural DSL (bench/peer_neural_dsl.py, in
a child process of that interpreter), parsing and transforming a plain chain of as many dense
layers as the largest chain, against nnspec's whole check of the same chain written in nnspec.
Each round also times the stages of the largest chain separately, the collector paused as in
the whole check: parse (`load_library`), resolve (`build_graph`) and check (`check`), each
result freed after its clock stops; "other" is the rest of the whole check (train sections, the
model, freeing the syntax tree and then the model, the deferred collection).

    python bench/frontend.py [--quick] [--json PATH] [--rounds N] [--peer PYTHON]
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lark

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nnspec  # noqa: E402
from nnspec.check import check  # noqa: E402
from nnspec.collector import collector_paused  # noqa: E402
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


def plain_chain_spec(layers: int) -> str:
    """`layers` dense layers after the input, one after another, and a sigmoid output: the chain
    the peer reads (bench/peer_neural_dsl.py), written in nnspec."""
    decls = [f"    input x: {WIDTH}"]
    decls += [f"    dense d{i}: {WIDTH}, act=relu" for i in range(1, layers + 1)]
    decls.append("    dense out: 1, act=sigmoid")
    names = ["x"] + [f"d{i}" for i in range(1, layers + 1)] + ["out"]
    links = [f"    {a} -> {b}" for a, b in itertools.pairwise(names)]
    body = "\n".join(decls + links)
    return f'network chain "generated plain chain" {{\n{body}\n}}\n'


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
ROOT = Path(__file__).resolve().parent.parent
SMALL_SPEC = ROOT / "examples" / "xor.nn"


SAMPLE_S = 1.0  # each sample of a spec repeats its run until about this much CPU time
STARTUP_RUNS = 3  # each start-up sample: the mean of this many child processes of each


def cpu_time(fn, repeat: int = 1) -> float:
    """CPU seconds of a run of `fn`: the mean over `repeat` runs back to back, from a collected
    heap (a full collection before each would take longer than the short runs themselves)."""
    gc.collect()
    start = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - start) / repeat


def stage_time(fn) -> float:
    """CPU seconds of one run of a stage, `fn`, from a collected heap; what it returns is freed
    after the clock stops (the whole check frees its stages' results once, not each stage)."""
    gc.collect()
    start = time.process_time()
    result = fn()
    elapsed = time.process_time() - start
    del result
    return elapsed


def repeats(seconds: float) -> int:
    """How many runs of `seconds` each make a sample of about SAMPLE_S: the short runs (the
    100- and 1,000-layer chains) are timed several times, so that their samples are as steady as
    the 10,000-layer chain's."""
    return max(1, round(SAMPLE_S / max(seconds, 1e-6)))


def bare_parser() -> lark.Lark:
    return lark.Lark(grammar_text(), parser="lalr")


def whole_check(text: str) -> None:
    model = nnspec.loads(text)
    gc.collect(0)  # the collection the paused collector deferred, with the model still alive
    del model


def child_cpu(command: list[str], env: dict) -> float:
    """User + sys CPU seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


LOADED = """
import sys
from nnspec.cli import main
try:
    main(["check", sys.argv[1]])
except SystemExit:
    pass
print("\\n".join(m for m in sys.modules if m.split(".")[0] not in ("nnspec", "__main__")))
"""

IMPORT_ALL = """
import gc, importlib, sys
if sys.argv[2] == "paused":  # as nnspec imports them
    gc.disable()
for name in open(sys.argv[1]).read().split():
    try:
        importlib.import_module(name)
    except Exception:
        pass
"""


class StartUp:
    """`nnspec check` of a small spec, and importing what it imports apart from nnspec."""

    def __init__(self, folder: str):
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPYCACHEPREFIX"] = os.path.join(folder, "pycache")
        self.env["PYTHONPATH"] = str(ROOT)
        loaded = subprocess.run(
            [sys.executable, "-c", LOADED, str(SMALL_SPEC)],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        self.modules = os.path.join(folder, "modules.txt")
        Path(self.modules).write_text("\n".join(loaded), encoding="utf-8")
        self.packages = sorted({m.split(".")[0] for m in loaded} & THIRD_PARTY)
        self.check_cmd = [sys.executable, "-m", "nnspec", "check", str(SMALL_SPEC)]
        self.import_cmd = [sys.executable, "-c", IMPORT_ALL, self.modules, "plain"]
        self.paused_cmd = [sys.executable, "-c", IMPORT_ALL, self.modules, "paused"]
        commands = (self.check_cmd, self.import_cmd, self.paused_cmd)
        for command in commands:  # bytecode written, caches warm
            child_cpu(command, self.env)

    def measure(self) -> tuple[float, float, float]:
        """The mean CPU seconds of STARTUP_RUNS checks and as many imports, plain and with the
        collector paused (as `import nnspec` pauses it), taken in turn."""
        totals = [0.0, 0.0, 0.0]
        for _ in range(STARTUP_RUNS):
            for i, command in enumerate((self.check_cmd, self.import_cmd, self.paused_cmd)):
                totals[i] += child_cpu(command, self.env)
        check_s, import_s, paused_s = (total / STARTUP_RUNS for total in totals)
        return check_s, import_s, paused_s


THIRD_PARTY = {
    "lark", "pydantic", "pydantic_core", "numpy", "networkx", "matplotlib", "rich", "safetensors",
    "pygments", "threadpoolctl", "torch", "annotated_types", "typing_extensions",
    "typing_inspection",
}  # fmt: skip


PEER_SCRIPT = ROOT / "bench" / "peer_neural_dsl.py"


class Peer:
    """The peer, Neural DSL, on a plain chain of `layers` dense layers, in a child process of the
    interpreter given (an environment of its own), against nnspec's whole check of the same
    chain in this process: one sample of each per round."""

    def __init__(self, python: str, layers: int, folder: str):
        self.command = [python, str(PEER_SCRIPT), str(layers), os.path.join(folder, "peer.json")]
        self.text = plain_chain_spec(layers)
        self.layers = layers
        self.samples: dict[str, list[float]] = {"peer_s": [], "nnspec_s": []}
        self.version = self.run()["version"]  # also checks that the peer reads the whole chain
        whole_check(self.text)

    def run(self) -> dict:
        done = subprocess.run(self.command, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(
                f"the peer failed under {self.command[0]}: {done.stderr.strip()[-600:]}\n"
                "hint: `make .venv-peer/.installed-neural-dsl-0.2.9` builds its environment"
            )
        result = json.loads(Path(self.command[-1]).read_text(encoding="utf-8"))
        if result["layers_read"] != self.layers + 1:  # its dense layers and its output
            raise SystemExit(f"the peer read {result['layers_read']} layers, not {self.layers + 1}")
        return result

    def measure(self) -> None:
        self.samples["peer_s"].append(self.run()["cpu_s"])
        self.samples["nnspec_s"].append(cpu_time(lambda: whole_check(self.text)))


class Stages:
    """One sample per round of each stage of the whole check, each timed alone, in CPU seconds
    (the collector as the stage leaves it: paused during it)."""

    def __init__(self, text: str):
        self.source = Source("<bench>", text)
        self.library = load_library(self.source)
        self.network = self.library.root.networks[0]
        self.samples: dict[str, list[float]] = {"parse_s": [], "resolve_s": [], "check_s": []}

    def measure(self) -> None:
        library, network = self.library, self.network
        # paused across each timing as across `nnspec.loads`: alone, a stage would also pay the
        # collection of all it returns, which in the whole check never comes (it is freed first)
        with collector_paused():
            self.samples["parse_s"].append(stage_time(lambda: load_library(self.source)))
            self.samples["resolve_s"].append(stage_time(lambda: build_graph(library, network)))
            graph = build_graph(library, network)  # check takes a fresh graph, built untimed
            self.samples["check_s"].append(stage_time(lambda: check(graph)))


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "low": min(values), "high": max(values)}


def shown(s: dict, digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} ({s['low']:.{digits}f} to {s['high']:.{digits}f})"


# ---- report ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="only 100 and 1,000 layers")
    ap.add_argument("--json", metavar="PATH", help="write the results as JSON")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument(
        "--peer",
        metavar="PYTHON",
        help="also time the peer, Neural DSL, with this interpreter (one with neural-dsl "
        "installed, such as .venv-peer/bin/python, which `make bench` builds)",
    )
    args = ap.parse_args(argv)

    sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    big = sizes[-1]
    specs = {f"chain {n:,}": chain_spec(n) for n in sizes}
    specs[f"block repeat ({big:,})"] = block_spec(big)
    parser = bare_parser()
    layers, runs = {}, {}
    for label, text in specs.items():  # warm up, the real layer count (blocks expanded), and
        layers[label] = len(nnspec.loads(text).program.layers)  # how often to repeat each run
        parser.parse(text)
        runs[label] = {
            "parse": repeats(cpu_time(lambda text=text: parser.parse(text))),
            "check": repeats(cpu_time(lambda text=text: whole_check(text))),
        }
    loads_before = os.getloadavg()

    times: dict[str, dict[str, list[float]]] = {
        label: {"parse": [], "check": []} for label in specs
    }
    startup: dict[str, list[float]] = {"check": [], "imports": [], "paused": []}
    stages = Stages(specs[f"chain {big:,}"])
    with tempfile.TemporaryDirectory() as folder:
        start_up = StartUp(folder)
        peer = Peer(args.peer, big, folder) if args.peer else None
        for _ in range(args.rounds):
            for label, text in specs.items():
                for what, fn in (("parse", parser.parse), ("check", whole_check)):
                    sample = cpu_time(lambda fn=fn, text=text: fn(text), runs[label][what])
                    times[label][what].append(sample)
            stages.measure()
            if peer:
                peer.measure()
            for key, seconds in zip(startup, start_up.measure(), strict=True):
                startup[key].append(seconds)
    loads_after = os.getloadavg()

    load = f"load average {loads_before[0]:.2f} before, {loads_after[0]:.2f} after"
    print(
        f"nnspec front end: Python {platform.python_version()}, lark {lark.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} cores, {load}; {args.rounds} rounds, "
        "CPU seconds, median (lowest to highest)"
    )
    header = (
        f"{'spec':<22} {'layers':>7} {'lines':>7} {'bare parse s':>13} {'whole check s':>14} "
        f"{'check/parse':>22} {'us/layer':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for label, text in specs.items():
        t = times[label]
        row = {
            "spec": label,
            "layers": layers[label],
            "runs_per_sample": runs[label],
            "lines": text.count("\n"),
            "parse_s": spread(t["parse"]),
            "check_s": spread(t["check"]),
            "ratio": spread([c / p for c, p in zip(t["check"], t["parse"], strict=True)]),
        }
        rows.append(row)
        ratio = shown(row["ratio"]) if not label.startswith("block") else "(short text)"
        print(
            f"{label:<22} {row['layers']:>7,} {row['lines']:>7,} "
            f"{row['parse_s']['median']:>13.4f} {row['check_s']['median']:>14.4f} "
            f"{ratio:>22} {row['check_s']['median'] / row['layers'] * 1e6:>9.1f}"
        )
    result = {
        "python": platform.python_version(),
        "lark": lark.__version__,
        "cores": os.cpu_count(),
        "load_average": {"before": loads_before, "after": loads_after},
        "rounds": args.rounds,
        "rows": rows,
    }

    counts = ", ".join(f"{label} {r['parse']}/{r['check']}" for label, r in runs.items())
    print(f"runs per sample (bare parse/whole check): {counts}; start-up: {STARTUP_RUNS} each")
    print("\ntargets (ratios within each round):")
    if 1_000 in sizes and 10_000 in sizes:
        small, large = times["chain 1,000"], times["chain 10,000"]
        growth = spread([b / a for a, b in zip(small["check"], large["check"], strict=True)])
        growth_parse = spread([b / a for a, b in zip(small["parse"], large["parse"], strict=True)])
        result["growth_check"], result["growth_parse"] = growth, growth_parse
        print(
            f"  whole check, 10,000 / 1,000 layers   x{shown(growth)}  (target <= 10.5; "
            f"lark's bare parse x{shown(growth_parse)})"
        )
    largest = rows[len(sizes) - 1]
    print(
        f"  whole check / bare parse ({largest['spec']})  {shown(largest['ratio'])}  (target <= 2)"
    )
    print(f"  whole check of {largest['spec']}  {shown(largest['check_s'], 3)} s  (target about 2)")
    ratio = spread([c / i for c, i in zip(startup["check"], startup["imports"], strict=True)])
    ratio_paused = spread([c / i for c, i in zip(startup["check"], startup["paused"], strict=True)])
    result["startup"] = {
        "check_s": spread(startup["check"]),
        "imports_s": spread(startup["imports"]),
        "imports_paused_s": spread(startup["paused"]),
        "ratio": ratio,
        "ratio_to_paused": ratio_paused,
        "packages": start_up.packages,
    }
    print(
        f"  nnspec check {SMALL_SPEC.name} / importing what it imports  {shown(ratio)}  "
        f"(target <= 1.2; {shown(result['startup']['check_s'], 3)} s against "
        f"{shown(result['startup']['imports_s'], 3)} s; {', '.join(start_up.packages)} and the "
        "standard library)"
    )
    print(
        f"    against the same imports with the collector paused  {shown(ratio_paused)}  "
        f"({shown(result['startup']['imports_paused_s'], 3)} s)"
    )

    if peer:
        samples = peer.samples
        speedup = spread(
            [p / n for p, n in zip(samples["peer_s"], samples["nnspec_s"], strict=True)]
        )
        result["peer"] = {
            "name": "neural-dsl",
            "version": peer.version,
            "layers": big,
            "peer_s": spread(samples["peer_s"]),
            "nnspec_s": spread(samples["nnspec_s"]),
            "speedup": speedup,
        }
        print(
            f"  the peer's time / nnspec's, a plain chain of {big:,} dense layers  "
            f"x{shown(speedup)}"
            f"  (target >= 10; Neural DSL {peer.version} {shown(result['peer']['peer_s'], 2)} s, "
            f"nnspec's whole check {shown(result['peer']['nnspec_s'], 3)} s)"
        )

    whole = times[f"chain {big:,}"]["check"]
    parts = stages.samples
    others = [w - sum(parts[k][i] for k in parts) for i, w in enumerate(whole)]
    st = {key: statistics.median(values) for key, values in parts.items()}
    st["other_s"] = statistics.median(others)
    st["whole_s"] = statistics.median(whole)
    result["stages"] = {"layers": big, **st}
    print(f"\nstages of the {big:,}-layer chain (each timed alone, median over the rounds, CPU s):")
    for key, label in (
        ("parse_s", "parse   (load_library)"),
        ("resolve_s", "resolve (build_graph)"),
        ("check_s", "check   (check)"),
        ("other_s", "other   (train, model, freeing, gc)"),
    ):
        print(f"  {label:<36} {st[key]:8.4f} s  {100 * st[key] / st['whole_s']:5.1f}%")
    print(f"  {'whole  (nnspec.loads + gc.collect(0))':<36} {st['whole_s']:8.4f} s")

    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
