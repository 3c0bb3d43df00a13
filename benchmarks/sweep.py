"""``python -m benchmarks.sweep``: a 12-trial digits sweep on a process pool against the same trials one after another.

    python -m benchmarks.sweep                  # 2 workers, 30 epochs, best of 1 (needs threadpoolctl)
    python -m benchmarks.sweep --workers 2 --epochs 10 --reps 3

Both runs train the same 12 trials (3 learning rates x 2 architectures x 2 activations) with
``chainrule.sweep``: ``workers=1`` runs them in this process one after another, ``workers=N``
on a pool of N processes. The trials' scores must come out equal (the pool changes where they
run, not what they compute); the result is the ratio of the two wall times.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

GRID = ["lr=0.05,0.1,0.2", "hidden=64;64,32", "activation=relu,tanh"]


def _timed(workers: int, epochs: int, out: Path) -> tuple[float, list[float]]:
    from chainrule.sweep import sweep

    start = time.perf_counter()
    results = sweep([*GRID, f"epochs={epochs}"], workers=workers, out=out)
    seconds = time.perf_counter() - start
    assert len(results.trials) == 12 and not results.failed, results
    return seconds, [t["val_accuracy"] for t in results.trials]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="pool size (default: 2)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs per trial (default: 30, chainrule train's)")
    parser.add_argument("--reps", type=int, default=1, help="runs of each; the fastest counts (default: 1)")
    parser.add_argument("--write", metavar="PAGE", help="also write the result into PAGE (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    from chainrule.sweep.runners import cores

    sequential, single, pooled = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            seconds, one_by_one = _timed(1, args.epochs, Path(tmp) / f"seq{rep}")
            sequential.append(seconds)
            with threadpool_limits(limits=1):  # the same, with the one BLAS thread each pool worker gets
                seconds, _ = _timed(1, args.epochs, Path(tmp) / f"one{rep}")
            single.append(seconds)
            seconds, in_pool = _timed(args.workers, args.epochs, Path(tmp) / f"pool{rep}")
            pooled.append(seconds)
            if in_pool != one_by_one:
                print("the pool's trials scored differently from the same trials run one by one", file=sys.stderr)
                return 1
    seq, one, pool = min(sequential), min(single), min(pooled)
    text = (
        f"Sweep: 12 digits trials ({', '.join(GRID)}, {args.epochs} epochs each) on {cores()} cores "
        f"(load average {os.getloadavg()[0]:.1f} at the end): one after another in one process {seq:.1f} s "
        f"({one:.1f} s with BLAS held to 1 thread); {args.workers} worker processes {pool:.1f} s, "
        f"{seq / pool:.2f}x faster ({one / pool:.2f}x against the 1-thread run; best of {args.reps}, "
        "pool start-up included; the trials' scores are identical)."
    )
    print(text)
    if args.write:
        from benchmarks.markdown import write_section

        command = f"python -m benchmarks.sweep --workers {args.workers} --epochs {args.epochs} --reps {args.reps}"
        body = f"## Sweeps\n\n`{command} --write {args.write}`, measured {time.strftime('%Y-%m-%d')}:\n\n{text}\n"
        write_section(args.write, "sweep", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
