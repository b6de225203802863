"""The front end's peer: Neural DSL (`neural-dsl`, a lark-based model DSL) parsing and
transforming a chain of dense layers, timed in its own interpreter.

Run by `bench/frontend.py --peer PYTHON` with the interpreter of an environment that has
neural-dsl (`make bench` builds one in .venv-peer: neural-dsl pins matplotlib below 3.10, so
it does not share nnspec's). It writes its result as JSON to the file it is given:

    PYTHON bench/peer_neural_dsl.py LAYERS OUT.json

The chain is `LAYERS` layers of `Dense(units=8, activation="relu")` after an 8-wide input, and
a sigmoid output, as nnspec's plain chain in bench/frontend.py. The time is the CPU time of
`ModelTransformer().parse_network(text)`, the peer's parse and transform, after a warm-up on
a short chain; its imports are not counted. Neural DSL logs as it goes (a line per rule, about
95 per layer): the logs go to /dev/null while it runs, and the time includes writing them
there, since a user of the peer pays it too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from importlib import metadata


def chain(layers: int) -> str:
    lines = ["network Chain {", "  input: (8,)", "  layers:"]
    lines += ['    Dense(units=8, activation="relu")'] * layers
    lines += [
        '    Output(units=1, activation="sigmoid")',
        '  loss: "binary_crossentropy"',
        "  optimizer: Adam(learning_rate=0.01)",
        "}",
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def silenced():
    """Standard output and error to /dev/null, at the level of the file descriptors."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (null, *saved):
            os.close(fd)


def main() -> int:
    layers, out = int(sys.argv[1]), sys.argv[2]
    with silenced():
        from neural.parser.parser import ModelTransformer

        ModelTransformer().parse_network(chain(10))  # warm-up
        text = chain(layers)
        start = time.process_time()
        model = ModelTransformer().parse_network(text)
        cpu_s = time.process_time() - start
    result = {
        "peer": "neural-dsl",
        "version": metadata.version("neural-dsl"),
        "layers": layers,
        "layers_read": len(model["layers"]),
        "cpu_s": cpu_s,
    }
    with open(out, "w", encoding="utf-8") as file:
        json.dump(result, file)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
