"""A worker of `nnspec train --procs N` (distributed.launch starts each one as
`python -c "from nnspec.training.worker import work; ..."`): it trains its rank of the job that
NNSPEC_JOB describes, and rank 0 tells the parent each epoch, and the result or the error, as
JSON lines on stdout.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import asdict

from ..errors import NnspecError
from . import train_models, training_models


def main() -> None:
    """Run `work` and end the process with its exit code, once its output is flushed, without
    the interpreter's teardown: the threads of torch.distributed's C++ side, torn down with it,
    can abort a worker that has done its work (SIGABRT), which the parent would take for a
    failure."""
    code = work()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def work() -> int:
    """A worker's main: train the job launch() gave (NNSPEC_JOB) as this rank; rank 0 tells the
    parent each epoch, and its result, as one JSON line each on stdout. The exit code: 0, 1 an
    error (told), 3 a bug (a traceback on stderr), 130 or 143 stopped."""
    job = json.loads(os.environ["NNSPEC_JOB"])
    rank = int(os.environ["RANK"])
    signal.signal(signal.SIGTERM, _terminate)
    try:
        models = training_models(job.pop("path"), job.pop("network"))
        result = train_models(
            models,
            job.pop("backend"),
            job.pop("out"),
            progress=(lambda epoch, row: tell(epoch=epoch, row=row)) if rank == 0 else None,
            notify=(lambda text, epochs: tell(notify=text, epochs=epochs)) if rank == 0 else None,
            **job,
        )
    except NnspecError as error:
        tell(error={**_error_fields(error), "text": str(error)})
        return 1
    except KeyboardInterrupt as stop:
        return 143 if isinstance(stop, _Terminated) else 130
    except Exception:  # noqa: BLE001 - a bug: the parent shows the traceback's end
        traceback.print_exc()
        return 3
    if rank == 0:
        tell(result=result_fields(result))
    return 0


def tell(**event) -> None:
    """One event for the parent: a JSON line on stdout."""
    print(json.dumps(event), flush=True)


def _error_fields(error: NnspecError) -> dict:
    return {"code": error.code, "message": error.message, "hint": error.hint}


def result_fields(result) -> dict:
    return {
        "network": result.network,
        "backend": result.backend,
        "metrics": result.metrics,
        "expectations": [asdict(e) for e in result.expectations],
        "paths": {k: str(v) for k, v in result.paths.items()},
        "history": result.history,
        "early_stop": asdict(result.early_stop) if result.early_stop else None,
    }


class _Terminated(KeyboardInterrupt):
    pass


def _terminate(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one stop; a second waits for it to finish
    raise _Terminated
