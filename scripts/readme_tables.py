"""Regenerate the README's CAP and PACELC tables from the commands the README names.

    python scripts/readme_tables.py            # rewrite both blocks in README.md
    python scripts/readme_tables.py --check    # exit 1 if README.md differs from a fresh run

Each block sits between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``
markers and is exactly what its command prints. Without ``--check`` the
README's two plots are drawn again too, by the commands the README names
(``capsim cap --out`` and ``capsim pacelc --out``, seed 1); ``--check``
compares the tables only (a PNG's bytes depend on the matplotlib version).
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from capsim.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
#: the README's plots: docs file <- (the command that draws it with --out DIR, the file it writes there)
PLOTS = {
    "docs/cap-throughput.png": ("capsim cap", "throughput.png"),
    "docs/pacelc-t-visibility.png": ("capsim pacelc", "t_visibility.png"),
}
COMMANDS = {
    "cap-table": "capsim cap --seeds 1-20 --config cp,ap,async,quorum,sync --markdown",
    "pacelc-table": "capsim pacelc --markdown",
}


def output(command: str) -> str:
    """What ``command`` prints on stdout (progress bars go to stderr)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(shlex.split(command)[1:])
    if status:
        raise SystemExit(f"{command} exited {status}")
    return out.getvalue()


def replaced(text: str, name: str, block: str) -> str:
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no <!-- {name}:begin --> ... <!-- {name}:end --> block")
    return pattern.sub(lambda m: m.group(1) + block + m.group(2), text)


def run(check: bool, names: list[str]) -> int:
    text = README.read_text(encoding="utf-8")
    fresh = text
    for name in names:
        fresh = replaced(fresh, name, output(COMMANDS[name]))
    if check:
        return 0 if fresh == text else 1
    README.write_text(fresh, encoding="utf-8")
    for target, (command, name) in PLOTS.items():
        with tempfile.TemporaryDirectory() as out:
            output(f"{command} --out {out}")
            shutil.copyfile(Path(out) / name, README.parent / target)
    return 0


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md differs from a fresh run")
    parser.add_argument("blocks", nargs="*", metavar="BLOCK", help=f"of {', '.join(COMMANDS)} (default: all)")
    args = parser.parse_args()
    for block in args.blocks:
        if block not in COMMANDS:
            parser.error(f"no README block {block!r}; choose from {', '.join(COMMANDS)}")
    sys.exit(run(args.check, args.blocks or list(COMMANDS)))
