"""``chainrule sweep``: train every combination of a grid of training options, rank them by validation score.

    chainrule sweep --data digits --grid "lr=0.01,0.1,0.5" --grid "hidden=64;64,32" --seeds 3
    chainrule sweep --grid "lr=log(1e-3,1)" --grid "activation=relu,tanh" --samples 20
    chainrule sweep --grid "lr=0.01,0.1" --ray --scheduler asha

A line per finished trial goes to stderr (one line rewritten in place on a terminal); the
results table, best first, goes to stdout. The out folder gets results.json, results.csv and
trials/ID/{model.safetensors,metrics.json}. A bad --grid is one line on stderr and exit
status 2 before anything runs; Ctrl-C stops the sweep, keeps the finished trials (``--resume``
skips them next time) and exits with status 130. The work is ``chainrule.sweep.sweep``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from chainrule.cli.commands import UsageError

EXIT_INTERRUPTED = 130

DESCRIPTION = """\
Train one MLP per combination of the --grid values (times --seeds), each with a validation
part, and print the configurations ranked by mean validation score (± std over seeds).

A grid entry is NAME=VALUES, NAME being a chainrule train option (lr, hidden, activation,
optimizer, momentum, l2, batch_size, epochs, ...). Values are separated by ',', hidden
sizes by ';' (hidden=64;64,32 is two architectures). A single value fixes the option
(epochs=20). With --samples K, K random draws instead: lr=log(1e-3,1) (log-uniform),
l2=uniform(0,1e-3), hidden=choice(64;64,32), or a plain list to pick from.
"""


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


_count.__name__ = "integer"


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Register ``sweep`` on the subparsers object ``sub``; its handler is ``sweep_command``."""
    command = sub.add_parser(
        "sweep",
        help="train every combination of a grid of options (or random draws), rank them by validation score",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("--data", default="digits", metavar="NAME", help="data set (default: digits)")
    command.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=VALUES",
        required=True,
        help='an option and its values, e.g. "lr=0.01,0.1" or "hidden=64;64,32" (repeat for more options)',
    )
    command.add_argument(
        "--samples",
        type=_count,
        default=None,
        metavar="K",
        help="random search: K draws from the grid's lists and ranges (default: the full grid)",
    )
    command.add_argument("--search-seed", type=int, default=0, help="seed of the random draws (default: 0)")
    command.add_argument(
        "--seeds", type=_count, default=1, help="train each configuration with seeds 0..N-1 (default: 1)"
    )
    command.add_argument(
        "--workers",
        type=_count,
        default=None,
        help="trials at a time (default: the number of cores; 1: in this process)",
    )
    command.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="run the trials as Ray Tune trials on the Ray cluster at ADDRESS (default: a local one); "
        "needs pip install 'chainrule[sweep]'",
    )
    command.add_argument(
        "--scheduler",
        choices=("fifo", "asha"),
        default="fifo",
        help="with --ray: asha stops unpromising trials early (default: fifo, every trial runs to the end)",
    )
    command.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output folder (default: runs/sweep)")
    command.add_argument("--resume", action="store_true", help="continue the sweep in --out, skipping finished trials")
    command.add_argument("--quiet", action="store_true", help="no line per trial on stderr")
    command.set_defaults(handler=sweep_command)
    return command


class _Progress:
    """A line per finished trial on stderr: rewritten in place on a terminal, plain lines otherwise (and in CI)."""

    def __init__(self, names: list[str], quiet: bool) -> None:
        self.names, self.quiet = names, quiet
        try:
            self.live = sys.stderr.isatty() and not os.environ.get("CI")
        except (AttributeError, ValueError):
            self.live = False
        self.best: float | None = None
        self.pending_newline = False

    def __call__(self, record: dict[str, Any], done: int, total: int) -> None:
        if self.quiet:
            return
        from chainrule.sweep.space import describe

        params = record["params"]
        config = " ".join(f"{n}={describe(params[n])}" for n in self.names) + f" seed={params['seed']}"
        score = next(((k, v) for k, v in record.items() if k in ("val_accuracy", "val_mse") and v is not None), None)
        result = f"{record['status']}" + (f" {score[0]} {score[1]:.4f}" if score else "")
        if record["status"] == "failed":
            result += f" ({record['error']})"
        line = f"[{done:>{len(str(total))}}/{total}] {config}: {result} ({record.get('seconds', 0):.1f} s)"
        if self.live:
            sys.stderr.write("\r\033[K" + line[: _columns() - 1])
            self.pending_newline = True
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.pending_newline:
            sys.stderr.write("\n")
            self.pending_newline = False


def _columns() -> int:
    import shutil

    return shutil.get_terminal_size((100, 20)).columns


def sweep_command(args: argparse.Namespace) -> int:
    from chainrule.sweep import SweepError, SweepInterrupted, sweep
    from chainrule.sweep.space import SpaceError, parse_grid

    if args.scheduler == "asha" and args.ray is None:
        raise UsageError("--scheduler asha needs --ray (ASHA is Ray Tune's scheduler)")
    try:
        names = [axis.name for axis in parse_grid(args.grid)]
    except SpaceError as err:
        raise UsageError(str(err)) from None
    progress = _Progress(names, args.quiet)
    try:
        results = sweep(
            args.grid,
            data=args.data,
            samples=args.samples,
            seeds=args.seeds,
            search_seed=args.search_seed,
            workers=args.workers,
            engine="local" if args.ray is None else "ray",
            address=args.ray or None,
            scheduler=args.scheduler,
            out=args.out,
            resume=args.resume,
            progress=progress,
        )
    except SweepError as err:
        raise UsageError(str(err)) from None
    except SweepInterrupted as stop:
        progress.close()
        _report(stop.results, args.out)
        done = len(stop.results.trials)
        print(
            f"interrupted: {done} of {stop.results.total} trials finished; continue with the same command and --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    progress.close()
    _report(results, args.out)
    return 0


def _report(results: Any, out: Path) -> None:
    print(results.format_table())
    missing = results.total - len(results.trials)
    failed = len(results.failed)
    print(
        f"{len(results.trials)} of {results.total} trials done"
        + (f", {failed} not ok" if failed else "")
        + (f", {missing} not run" if missing else "")
    )
    best = results.best
    if best is not None:
        print(f"best: trial {best['id']}, {results.metric} {best[results.metric]:.4f}, model {best['model']}")
    print(f"wrote {out / 'results.csv'} and {out / 'results.json'}")


__all__ = ["add_parser", "sweep_command"]
