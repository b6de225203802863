"""The command line: `nnspec check`, `nnspec summary`.

The exit code is decided in one place, `main`: 0 success, 1 a mistake in the
user's spec or data, 2 a usage error, 3 an internal failure (a bug). Data goes to
stdout; diagnostics to stderr.
"""

from __future__ import annotations

import argparse
import sys
import traceback

from . import __version__
from .check import DEFAULT_MAX_PARAMS
from .errors import SpecError, wants_color

OK, SPEC_ERROR, USAGE, BUG = 0, 1, 2, 3
DUMPS = ("syntax", "graph", "program")


def run() -> None:
    """The `nnspec` console script."""
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # argparse: --help is 0, a usage error 2
        return int(exit.code or 0)
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return USAGE
    try:
        return args.run(args)
    except SpecError as error:
        _report(error)
        return SPEC_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return OK
    except Exception:  # noqa: BLE001 - anything else is ours to fix
        traceback.print_exc()
        print(f"nnspec {__version__}: internal error; this is a bug in nnspec, not in your spec. Please report it with the spec.",
              file=sys.stderr)
        return BUG


def _report(error: SpecError) -> None:
    color = wants_color()
    for each in error.errors:
        print(each.render(color), file=sys.stderr)
    count = len(error.errors)
    if count > 1:
        print(f"{count} errors", file=sys.stderr)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nnspec",
        description="Compile, check, summarise and (soon) train and draw neural networks written as .nn specs.",
        epilog="Exit codes: 0 success, 1 an error in a spec, 2 a usage error. Docs: docs/language.md, docs/errors.md.",
    )
    parser.add_argument("--version", action="version", version=f"nnspec {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")

    check = commands.add_parser("check", help="check specs and report every mistake", description=(
        "Parse and check each FILE: names, links, cycles, shapes, parameter counts and train sections. "
        "Prints nothing but diagnostics; exits 0 when every file is clean."))
    check.add_argument("files", nargs="+", metavar="FILE", help="a .nn spec")
    check.add_argument("--dump", choices=DUMPS, help="print a stage's result: the syntax tree, the graph, or the checked program")
    _budget(check)
    check.set_defaults(run=_check)

    summary = commands.add_parser("summary", help="print the layer table of a spec", description=(
        "Print each network of FILE as a table: layer, kind, output shape, parameters, inputs; then the totals."))
    summary.add_argument("file", metavar="FILE", help="a .nn spec")
    summary.add_argument("--network", help="only this network of the file")
    _budget(summary)
    summary.set_defaults(run=_summary)
    return parser


def _budget(command: argparse.ArgumentParser) -> None:
    command.add_argument("--max-params", type=_count, default=DEFAULT_MAX_PARAMS, metavar="N",
                         help=f"reject networks with more parameters than N (default {DEFAULT_MAX_PARAMS:.0e})")


def _count(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from None
    if not value >= 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1: {text}")
    return int(value)


def _check(args) -> int:
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
    return SPEC_ERROR if failures else OK


def _dump(program, stage: str) -> str:
    from .dump import dump_graph, dump_program

    return dump_graph(program.graph) if stage == "graph" else dump_program(program)


def _summary(args) -> int:
    from .model import check_source
    from .resolve import read_source

    models = check_source(read_source(args.file), args.max_params)
    if args.network:
        chosen = [m for m in models if m.name == args.network]
        if not chosen:
            from .errors import did_you_mean

            raise SpecError("E316", f"no network '{args.network}' in {args.file}", None, did_you_mean(args.network, [m.name for m in models], "networks"))
        models = chosen
    width = 120 if not sys.stdout.isatty() else None
    from .summary import render_summary

    for model in models:
        sys.stdout.write(render_summary(model.program, width=width or _terminal_width(), color=sys.stdout.isatty()))
    return OK


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((100, 24)).columns
