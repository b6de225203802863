"""The command line: `nnspec check`, `summary`, `draw`, `zoo`, `train`, `predict`, `compile`,
`fmt`, `lsp`.

The exit code is decided in one place, `main`: 0 success; 1 a user's error (a spec, its data, a
file, a drawing, an expectation missed): every one an `NnspecError`, printed with its code and
hint; 2 a usage error; 3 an internal error (a bug in nnspec); 130 interrupted (Ctrl-C), 143
terminated (SIGTERM, during `nnspec train`). Data goes to stdout; diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import traceback

from . import __version__, collector
from .check import DEFAULT_MAX_PARAMS
from .errors import FileError, NnspecError, SpecError, did_you_mean, wants_color

OK, USER_ERROR, USAGE, BUG, INTERRUPTED, TERMINATED = 0, 1, 2, 3, 130, 143
DUMPS = ("syntax", "graph", "program")
EXIT_CODES = (
    "Exit codes: 0 success, 1 an error in a spec, its data, a file or a drawing, or an expectation "
    "missed; 2 a usage error; 3 an internal error (a bug in nnspec); 130 interrupted (Ctrl-C); 143 "
    "terminated (SIGTERM)."
)


def run() -> None:
    """The `nnspec` console script (and `python -m nnspec`): main in a process of its own."""
    collector.own_process()
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    """Run one command; every exit code nnspec gives is decided here."""
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(_asked(parser, argv))
    except SystemExit as exit:  # argparse: --help is 0, a usage error 2
        return int(exit.code or 0)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return USAGE
    try:
        failed = args.run(args)
    except NnspecError as error:
        _report(error)
        return USER_ERROR
    except KeyboardInterrupt as stop:  # a command may say what was kept, and how to go on
        # `nnspec train` turns SIGTERM into this same stop, marked with the signal
        terminated = getattr(stop, "signal", None) == signal.SIGTERM
        print(str(stop) or ("terminated" if terminated else "interrupted"), file=sys.stderr)
        return TERMINATED if terminated else INTERRUPTED
    except BrokenPipeError:  # the reader of stdout went away (`| head`): nothing is wrong
        return OK
    except OSError as error:  # a file or folder the operating system refused
        _report(FileError.from_os(error))
        return USER_ERROR
    except Exception:  # noqa: BLE001 - anything else is ours to fix
        traceback.print_exc()
        print(
            f"nnspec {__version__}: internal error; this is a bug in nnspec, not in your spec. "
            "Please report it to nnspec's maintainers with the command you ran, the spec and "
            "the traceback above.",
            file=sys.stderr,
        )
        return BUG
    return USER_ERROR if failed else OK


def _asked(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`argv` as argparse should read it: `nnspec help [COMMAND]` is `nnspec [COMMAND] --help`;
    an unknown command is a usage error that names the closest one (argparse lists them all)."""
    commands = next(
        action.choices
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    if argv[:1] == ["help"]:
        return [*argv[1:2], "--help"] if argv[1:2] and argv[1] in commands else ["--help"]
    if argv and not argv[0].startswith("-") and argv[0] not in commands:
        if os.path.isdir(argv[0]):
            parser.error(f"'{argv[0]}' is a folder, not a command: try 'nnspec zoo {argv[0]}'")
        if argv[0].endswith(".nn") or os.path.exists(argv[0]):
            parser.error(f"'{argv[0]}' is a file, not a command: try 'nnspec check {argv[0]}'")
        guess = did_you_mean(argv[0], commands, "commands")
        parser.error(f"unknown command '{argv[0]}'" + (f"; {guess}" if guess else ""))
    return argv


def _report(error: NnspecError) -> None:
    color = wants_color()
    for each in error.errors:
        print(each.render(color), file=sys.stderr)
    count = len(error.errors)
    if count > 1:
        print(f"{count} errors", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnspec",
        description=(
            "Compile, check, summarise, train, run and draw neural networks written as .nn specs."
        ),
        epilog=f"{EXIT_CODES} Docs: docs/language.md, docs/errors.md.",
    )
    parser.add_argument("--version", action="version", version=f"nnspec {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    check = commands.add_parser(
        "check",
        help="check specs and report every mistake",
        description=(
            "Parse and check each FILE: names, links, cycles, shapes, parameter counts and train "
            "sections. Prints nothing but diagnostics; exits 0 when every file is clean."
        ),
    )
    check.add_argument("files", nargs="+", metavar="FILE", help="a .nn spec")
    check.add_argument(
        "--dump",
        choices=DUMPS,
        help="print a stage's result: the syntax tree, the graph, or the checked program",
    )
    _budget(check)
    check.set_defaults(run=_check)

    summary = commands.add_parser(
        "summary",
        help="print the layer table of a spec",
        description=(
            "Print each network of FILE as a table: layer, kind, output shape, parameters, "
            "inputs; then the totals."
        ),
    )
    summary.add_argument("file", metavar="FILE", help="a .nn spec")
    summary.add_argument("--network", help="only this network of the file")
    _budget(summary)
    summary.set_defaults(run=_summary)
    _drawing_commands(commands)

    train = commands.add_parser(
        "train",
        help="train a spec's network by its train section",
        description=(
            "Train the network of FILE as its train section says, with a progress bar; write "
            "metrics.csv, metrics.png, weights.safetensors, settings.json and checkpoints into "
            "--out, which one run holds at a time. Exits 1 when an 'expect' line is missed; 130 "
            "after Ctrl-C and 143 after SIGTERM, with the last checkpoint kept."
        ),
    )
    train.add_argument("file", metavar="FILE", help="a .nn spec with a train section")
    train.add_argument(
        "--backend",
        choices=("torch", "numpy"),
        default=None,
        help="where to train: torch (the default when it is installed) or numpy",
    )
    train.add_argument(
        "--out", metavar="DIR", help="where to write the results (default: runs/<network name>)"
    )
    again = train.add_mutually_exclusive_group()
    again.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in --out"
    )
    again.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the results of a run already in --out (without it, such a folder is refused)",
    )
    train.add_argument("--network", help="the network to train, in a file that holds several")
    train.add_argument(
        "--epochs", type=nonnegative_int_argument, metavar="N", help="override the spec's epochs"
    )
    train.add_argument(
        "--lr",
        type=positive_float_argument,
        metavar="X",
        help="override the optimizer's learning rate",
    )
    train.add_argument(
        "--batch", type=positive_int_argument, metavar="N", help="override the batch size"
    )
    train.add_argument(
        "--seed", type=nonnegative_int_argument, metavar="N", help="override the seed"
    )
    train.add_argument(
        "--procs",
        type=positive_int_argument,
        default=1,
        metavar="N",
        help="train data-parallel in N processes on this machine (torch.distributed; for several "
        "machines start nnspec under torchrun instead)",
    )
    _device_option(train, "train")
    _threads_option(train)
    train.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also write TensorBoard event files into DIR: each metric per epoch, the learning "
        "rate and the network's diagram (needs tensorboardX: pip install 'nnspec[tensorboard]')",
    )
    train.set_defaults(run=_train)

    predict = commands.add_parser(
        "predict",
        help="run a trained network on new examples",
        description=(
            "Compute the outputs of FILE's network with the weights that 'nnspec train' wrote, "
            "for the examples in --input (csv with a header row, npz, or json: a list of "
            "examples). Prints csv, or writes -o OUT "
            "(.csv, .npz or .json); an output that ends in softmax also gets its most likely class."
        ),
    )
    predict.add_argument("file", metavar="FILE", help="the .nn spec the weights were trained from")
    predict.add_argument(
        "--weights",
        required=True,
        metavar="W",
        help="a weights.safetensors written by nnspec train",
    )
    predict.add_argument(
        "--input", required=True, metavar="X", help="the examples: X.csv, X.npz or X.json"
    )
    predict.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        type=_output_file,
        help="write the outputs to OUT (.csv, .npz, .json)",
    )
    predict.add_argument(
        "--backend",
        choices=("torch", "numpy"),
        default=None,
        help="where to compute (default: torch when installed)",
    )
    predict.add_argument(
        "--network", help="the network, in a file that holds several (a GAN's generator)"
    )
    _device_option(predict, "compute")
    _threads_option(predict)
    predict.set_defaults(run=_predict)

    compile_ = commands.add_parser(
        "compile",
        help="write the network as a standalone PyTorch, NumPy or ONNX file",
        description=(
            "Write FILE's network as a file that needs no nnspec: a PyTorch module (.py), a NumPy "
            "program (.py), each with its parameters beside it as NAME.safetensors, or an ONNX "
            "model (.onnx, parameters inside). The parameters are the seeded initial ones, or "
            "those of --weights. See docs/compile.md."
        ),
    )
    compile_.add_argument("file", metavar="FILE", help="the .nn spec")
    compile_.add_argument(
        "--to", required=True, choices=("torch", "numpy", "onnx"), help="the target"
    )
    compile_.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="the file to write (default: NAME.py or NAME.onnx in the current folder; a folder: "
        "that file in it)",
    )
    compile_.add_argument(
        "--weights", metavar="W", help="a weights.safetensors written by nnspec train"
    )
    compile_.add_argument("--network", help="the network, in a file that holds several")
    compile_.set_defaults(run=_compile)
    _editor_commands(commands)
    return parser


# ---- fmt and lsp: the editor tools (docs/editors.md) ----------------------------------------
def _editor_commands(commands) -> None:
    fmt = commands.add_parser(
        "fmt",
        help="format specs in one canonical layout, keeping comments",
        description=(
            "Rewrite each FILE in nnspec's one layout (docs/editors.md): indentation, spacing, "
            "aligned layer declarations and settings, one statement per line, every comment kept "
            "where it was. A file is rewritten only when its formatted text checks to the same "
            "program; '-' reads stdin and writes stdout. --check and --diff write nothing."
        ),
    )
    fmt.add_argument("files", nargs="+", metavar="FILE", help="a .nn spec, or - for stdin")
    fmt.add_argument(
        "--check", action="store_true", help="exit 1 when a file would change (for CI, pre-commit)"
    )
    fmt.add_argument("--diff", action="store_true", help="print what would change, as a diff")
    fmt.set_defaults(run=_fmt)

    lsp = commands.add_parser(
        "lsp",
        help="the language server for editors, over stdio",
        description=(
            "Serve the Language Server Protocol over stdin and stdout: diagnostics as you type, "
            "hover, go to definition, completion, document symbols and formatting. Needs the lsp "
            "extra (pip install 'nnspec[lsp]'); see docs/editors.md."
        ),
    )
    lsp.set_defaults(run=_lsp)


def _fmt(args) -> bool:
    from .fmt import run_fmt

    return run_fmt(args.files, _report, check=args.check, diff=args.diff)


def _lsp(args) -> None:
    from .lsp import serve

    serve()


def _budget(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-params",
        type=positive_int_argument,
        default=DEFAULT_MAX_PARAMS,
        metavar="N",
        help=f"reject networks with more parameters than N (default {DEFAULT_MAX_PARAMS:.0e})",
    )


def _device_option(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--device",
        type=device_argument,
        metavar="D",
        help=f"where torch should {what}: cpu, cuda, cuda:N or mps (default: the best there is)",
    )


def _threads_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--threads",
        type=positive_int_argument,
        metavar="N",
        help="compute with N threads (torch and NumPy's BLAS; default: 1 for a small network, "
        "else every core; see docs/training.md)",
    )


def device_argument(text: str) -> str:
    from .backends.devices import DeviceError, check_name

    try:
        return check_name(text)
    except DeviceError as error:
        raise argparse.ArgumentTypeError(f"{error.message}: give {error.hint[5:]}") from None


def positive_int_argument(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not 1 <= value < float("inf") or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1: {text}")
    return int(value)


def nonnegative_int_argument(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0: {text}")
    return int(text)


def positive_float_argument(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    from .train_section import LARGEST_LR  # a learning rate's bound (float32's largest)

    if not 0 < value <= LARGEST_LR:
        raise argparse.ArgumentTypeError(
            f"must be a positive number up to {LARGEST_LR:.3g}: {text}"
        )
    return value


def _output_file(text: str) -> str:
    if not text.lower().endswith((".csv", ".npz", ".json")):
        raise argparse.ArgumentTypeError(f"must end in .csv, .npz or .json: {text}")
    return text


def _predict(args) -> None:
    from .model import load
    from .training.predict import class_labels, run_model, write_outputs
    from .training.recorded import recorded_labels

    model = load(args.file, args.network)
    outputs = run_model(
        model, args.weights, args.input, args.backend, args.device, threads=args.threads
    )
    program = model.program
    classes = {name: program.layer(name).activation == "softmax" for name in outputs}
    labels = class_labels(outputs, recorded_labels(args.weights))
    text = write_outputs(outputs, args.output, classes, labels)
    if text is not None:
        sys.stdout.write(text)
    else:
        print(f"wrote {args.output}", file=sys.stderr)


def _compile(args) -> None:
    from pathlib import Path

    from .compile import TARGETS
    from .model import load

    model = load(args.file, args.network)
    suffix = TARGETS[args.to]
    out = Path(args.output) if args.output else Path(model.name + suffix)
    # a folder: one that is there, or a name that ends in a slash or has no extension (made)
    if out.is_dir() or (args.output and (args.output.endswith(("/", os.sep)) or not out.suffix)):
        out = out / (model.name + suffix)
    if out.suffix != suffix:
        raise NnspecError(
            "R602",
            f"the {args.to} target writes a {suffix} file, not '{out}'",
            f"name the output {out.with_suffix(suffix)}, or a folder to write "
            f"{model.name}{suffix} into",
        )
    written = model.compile(args.to, out, args.weights)
    print("wrote " + ", ".join(str(path) for path in written), file=sys.stderr)


def _train(args) -> None:
    from .training.report import train_command

    train_command(args)


def _check(args) -> bool:
    """Every file checked and reported on its own; True when any has errors."""
    from .model import check_source
    from .resolve import read_source

    failures: list[SpecError] = []
    for path in args.files:
        try:
            source = read_source(path)
            if args.dump == "syntax":
                from .parse import parse
                from .syntax import dump

                print(dump(parse(source)))
                continue
            models = check_source(source, args.max_params)
        except SpecError as error:
            failures.append(error)
            _report(error)
            continue
        for model in models if args.dump else ():
            print(_dump(model.program, args.dump))
    if len(args.files) > 1 and failures:
        print(f"{len(failures)} of {len(args.files)} files have errors", file=sys.stderr)
    return bool(failures)


def _dump(program, stage: str) -> str:
    from .dump import dump_graph, dump_program

    return dump_graph(program.graph) if stage == "graph" else dump_program(program)


def _chosen(models: list, args) -> list:
    """The models of `args.file`, or only `--network`'s (E316 when the file has none of that
    name)."""
    if not args.network:
        return models
    chosen = [m for m in models if m.name == args.network]
    if not chosen:
        raise SpecError(
            "E316",
            f"no network '{args.network}' in {args.file}",
            None,
            did_you_mean(args.network, [m.name for m in models], "networks"),
        )
    return chosen


def _summary(args) -> None:
    from .model import load_all
    from .summary import render_summary

    models = _chosen(load_all(args.file, max_params=args.max_params), args)
    width = 120 if not sys.stdout.isatty() else _terminal_width()
    for model in models:
        sys.stdout.write(render_summary(model.program, width=width, color=sys.stdout.isatty()))


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns


# ---- draw and zoo ---------------------------------------------------------------------------
def _drawing_commands(commands) -> None:
    draw = commands.add_parser(
        "draw",
        help="draw a spec as a Neural Network Zoo diagram",
        description=(
            "Draw the networks of FILE in the style of the Asimov Institute's Neural Network "
            "Zoo: cells in columns, filled and marked by cell type, links under them, the name "
            "and description above, a legend below. A GAN's generator and discriminator are "
            "drawn side by side; a file of several networks as a grid."
        ),
    )
    draw.add_argument("file", metavar="FILE", help="a .nn spec")
    draw.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help=(
            "the picture to write: .svg, .png or .pdf (default: FILE's name with .svg, in the "
            "current folder)"
        ),
    )
    draw.add_argument("--network", help="only this network of the file")
    _drawing_options(draw)
    draw.set_defaults(run=_draw)

    zoo = commands.add_parser(
        "zoo",
        help="draw every network of a folder as a poster and a web page",
        description=(
            "Check every .nn spec in DIR (default: the bundled zoo), then write into OUT: the "
            "poster in the chart's grid (zoo.svg, zoo.png, zoo.pdf), one SVG per network, and "
            "index.html with each diagram, its spec, its parameter "
            "count and its trained result (from RUNS/NAME/metrics.csv when present)."
        ),
    )
    zoo.add_argument(
        "directory",
        nargs="?",
        metavar="DIR",
        help="a folder of .nn specs (default: the bundled specs)",
    )
    zoo.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        default="zoo",
        help="the folder to write into (default: zoo); a name ending in .svg, .png or .pdf "
        "writes the poster alone, in that format",
    )
    zoo.add_argument(
        "--runs", metavar="RUNS", default="runs", help="where training runs are (default: runs)"
    )
    _drawing_options(zoo)
    zoo.set_defaults(run=_zoo)


def _drawing_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--palette",
        choices=("asimov", "colorblind"),
        default="asimov",
        help=(
            "asimov: the chart's colours (default); colorblind: safe colours and a mark for every "
            "cell type"
        ),
    )
    command.add_argument(
        "--annotate",
        action="store_true",
        help="write each layer's name, kind, shape and activation under it",
    )
    command.add_argument(
        "--orient",
        choices=("lr", "tb"),
        default="lr",
        help="lr: left to right (default); tb: top to bottom",
    )
    _budget(command)


def _draw(args) -> None:
    from pathlib import Path

    from .draw import draw, output_format
    from .model import drawables, load_all

    out = args.output or Path(args.file).with_suffix(".svg").name
    output_format(out)  # a name nnspec cannot write is reported before the spec is read
    models = _chosen(load_all(args.file, max_params=args.max_params), args)
    if not models:
        raise SpecError(
            "E315",
            f"{args.file} defines no network to draw, only blocks",
            None,
            "a spec declares 'network NAME { ... }'",
        )
    options = {"palette": args.palette, "annotate": args.annotate, "orient": args.orient}
    print(draw(drawables(models), out, **options))


def _zoo(args) -> None:
    from .draw import make_zoo
    from .model import zoo_files

    files = zoo_files(args.directory, args.max_params)
    options = {"palette": args.palette, "annotate": args.annotate, "orient": args.orient}
    for path in make_zoo(files, args.output, runs=args.runs, **options):
        print(path)
