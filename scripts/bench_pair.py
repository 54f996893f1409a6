"""This tree's heartbeat ring against another revision's, in pairs: the figure that resolves a 5% change.

    python scripts/bench_pair.py 09dd5f1                    # 40 rounds, both models, 1,000 and 10,000 nodes
    python scripts/bench_pair.py HEAD~1 --models sleep --rounds 20 --json

On a shared 2-core VM the bench's absolute figures move by 2x within
minutes, so two runs of scripts/bench.py cannot tell a 5% gain from the
host. Here the rings of both trees (scripts/bench_scale.py's, at each size
and model) stay resident side by side, with a second ring of this tree as an
A/A control; their measured windows take turns a fraction of a second apart,
each after one unmeasured heartbeat round, and a round's ratio is this
tree's window over the other's. Each figure is the median over the rounds;
the A/A column is what the same code gives against itself, the noise floor
of that run. The other revision is checked out in a temporary git worktree
and its compiled core built there with this Python; the worktree is removed
after, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import ROOT, capsim_ring

MODELS = ("sleep", "every")


def checkout(rev: str, where: Path) -> Path:
    """``rev`` in a detached worktree at ``where``, with its compiled core if it has one and it builds.

    The core is built as ``pip install`` builds it (a wheel, in pip's isolated build environment, so the
    revision's own setup.py and pyproject.toml decide), and only the compiled module is taken from the wheel.
    """
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(where), rev],
        check=True,
        capture_output=True,
        text=True,
    )
    if (where / "setup.py").exists():
        wheels = where / ".wheel"
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels), str(where)],
            capture_output=True,
            text=True,
        )
        for wheel in wheels.glob("*.whl"):
            with zipfile.ZipFile(wheel) as archive:
                for name in archive.namelist():
                    if name.startswith("emulator/_speedups") and name.endswith((".so", ".pyd")):
                        (where / name).write_bytes(archive.read(name))
    return where


def remove(where: Path) -> None:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], capture_output=True)
    subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)


def core_of(tree: Path) -> str:
    """Which scheduler core a process importing capsim from ``tree`` runs."""
    out = subprocess.run(
        [sys.executable, "-c", "import emulator.speedups as s; print(s.MODE)"],
        cwd=tree,
        env=dict(os.environ, PYTHONPATH=str(tree)),
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or f"none ({out.stderr.strip().splitlines()[-1] if out.stderr.strip() else 'no output'})"


def pair(other: Path, models: list[str], sizes: list[int], seconds: dict[int, float], rounds: int) -> list[dict]:
    """Per model and size: this tree's and the other's median window, and the medians of the rounds' ratios."""
    rings = {}
    try:
        for model in models:
            for size in sizes:
                for who, tree in (("this", ROOT), ("again", ROOT), ("other", other)):
                    rings[(model, size, who)] = capsim_ring(f"{who}-{model}-{size}", size, model, tree=tree)
        live = {key: ring for key, ring in rings.items() if ring.built is not None}
        for _ in range(rounds):
            for (_model, size, _who), ring in live.items():
                ring.window(0.1, seconds[size])
        rows = []
        for model in models:
            for size in sizes:
                this, again, that = (rings[(model, size, who)] for who in ("this", "again", "other"))
                if that.built is None:  # a revision from before Node.every
                    rows.append({"model": model, "nodes": size, "other": None})
                    continue
                cost = [[w["us_per_msg"] for w in ring.windows] for ring in (this, again, that)]
                rows.append(
                    {
                        "model": model,
                        "nodes": size,
                        "this_us": statistics.median(cost[0]),
                        "other_us": statistics.median(cost[2]),
                        "this_over_other": statistics.median(a / b for a, b in zip(cost[0], cost[2])),
                        "a_a": statistics.median(a / b for a, b in zip(cost[1], cost[0])),
                        "rounds": rounds,
                    }
                )
        return rows
    finally:
        for ring in rings.values():
            ring.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 done; 2 a usage error, or a revision git does not know.",
    )
    parser.add_argument("rev", help="the revision to compare against (a commit, a tag, HEAD~1)")
    parser.add_argument("--rounds", type=int, default=40, help="measured windows per ring (default 40)")
    parser.add_argument("--models", default="sleep,every", help="comma-separated: sleep, every (default both)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 nodes, short windows: a smoke run")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if not models or any(m not in MODELS for m in models):
        parser.error(f"--models takes {', '.join(MODELS)}; got {args.models!r}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    known = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", "--quiet", f"{args.rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if known.returncode != 0:
        parser.error(f"git knows no commit {args.rev!r} in {ROOT}")
    sizes, seconds = ([200, 2000], {200: 0.3, 2000: 0.1}) if args.quick else ([1000, 10_000], {1000: 3.0, 10_000: 0.3})

    def interrupt(signum, frame):  # SIGTERM (kill, a CI's timeout) cleans up as Ctrl-C does
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix="capsim-pair-") as scratch:
            other = Path(scratch) / "tree"
            try:
                checkout(args.rev, other)
                cores = {"this": core_of(ROOT), "other": core_of(other)}
                rows = pair(other, models, sizes, seconds, args.rounds)
            finally:
                remove(other)
    except KeyboardInterrupt:
        print("bench_pair: interrupted (the worktree and the rings are gone)", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps({"rev": args.rev, "cores": cores, "rows": rows}, indent=2))
        return 0
    print(f"this tree ({cores['this']}) against {args.rev} ({cores['other']}), {args.rounds} rounds;")
    print("ratios: medians over the rounds of this tree's window over the other's (A/A: this tree against itself)")
    print(f"{'model':6} {'nodes':>7} {'this us/msg':>12} {'other us/msg':>13} {'this / other':>13} {'A/A':>6}")
    for row in rows:
        if "this_us" not in row:
            print(f"{row['model']:6} {row['nodes']:>7,}   (the other revision has no Node.every)")
            continue
        print(
            f"{row['model']:6} {row['nodes']:>7,} {row['this_us']:>12.3f} {row['other_us']:>13.3f} "
            f"{row['this_over_other']:>12.3f}x {row['a_a']:>5.3f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
