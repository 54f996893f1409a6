"""CPython's own asyncio test suite, run with every new event loop a ``VirtualLoop``.

    python scripts/asyncio_conformance.py                 # every module, a table
    python scripts/asyncio_conformance.py test_locks ...  # some modules
    python scripts/asyncio_conformance.py --json          # the counts as JSON
    python scripts/asyncio_conformance.py -v test_tasks   # each failure's traceback too

Each module runs in a fresh process under an event loop policy whose
``new_event_loop()`` makes a ``VirtualLoop``, so ``asyncio.run``,
``asyncio.Runner``, ``IsolatedAsyncioTestCase`` and ``asyncio.new_event_loop``
all run on it, and so does the suite's ``new_test_loop()`` unless the test
drives asyncio's ``TestLoop`` clock itself (a generator of timeouts,
``advance_time``): those keep ``TestLoop``. Tests
that build a loop of their own (``test_runners`` mocks ``BaseEventLoop``) test
asyncio, not us, and run as on any interpreter.

A failure whose error is ``NotAllowed`` is counted apart, as ``refused``: the
test needs threads, an executor, subprocesses, signals or real I/O, which a
simulation refuses on purpose (they run outside virtual time). ``KNOWN`` names
the few that fail for a reason of the test's own, each with the reason; the
``loops`` column counts the VirtualLoops a module made (0: it tests loops of
its own, such as ``test_runners``' mocks). The interpreter
must ship its test package (``python -c "import test.test_asyncio"``); some
distributions leave it out, and then this says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Modules that test something a simulation refuses as a whole (real sockets, processes, signals,
# threads, files), or that only hold helpers.
REFUSED_MODULES = {
    "test_base_events": "real sockets and executors",
    "test_buffered_proto": "real sockets",
    "test_context": "no event loop",
    "test_events": None,  # run: the loop-agnostic parts pass; the rest is refused test by test
    "test_proactor_events": "Windows only",
    "test_selector_events": "selectors on real sockets",
    "test_sendfile": "real sockets and files",
    "test_server": "real sockets",
    "test_sock_lowlevel": "real sockets",
    "test_ssl": "real TLS sockets",
    "test_sslproto": "real TLS sockets",
    "test_streams": "real sockets (simulated streams are issue 13's item 2)",
    "test_subprocess": "subprocesses",
    "test_unix_events": "signals, pipes and real sockets",
    "test_windows_events": "Windows only",
    "test_windows_utils": "Windows only",
    "test_threads": "threads",
    "utils": "helpers",
    "functional": "helpers",
    "echo": "helpers",
    "echo2": "helpers",
    "echo3": "helpers",
    "__main__": "helpers",
}

#: Tests that fail on VirtualLoop for a reason that is the test's, not asyncio's behaviour: counted apart.
KNOWN = {
    "test_tasks.CoroutineGatherTests.test_issue46672": (
        "patches BaseEventLoop.call_exception_handler; VirtualLoop is an AbstractEventLoop, not a BaseEventLoop"
    ),
}

_CHILD = r"""
import asyncio, json, sys, unittest
sys.path.insert(0, sys.argv[2])
from emulator.errors import NotAllowed
from emulator.loop import VirtualLoop

made = [0]

class VirtualPolicy(asyncio.DefaultEventLoopPolicy):
    def new_event_loop(self):
        made[0] += 1
        return VirtualLoop()

asyncio.set_event_loop_policy(VirtualPolicy())
_set = asyncio.set_event_loop_policy
def set_event_loop_policy(policy):  # a module's tearDown puts the default back: keep ours
    _set(VirtualPolicy() if policy is None else policy)
asyncio.set_event_loop_policy = asyncio.events.set_event_loop_policy = set_event_loop_policy

from test.test_asyncio import utils as test_utils
_stock_new_test_loop = test_utils.TestCase.new_test_loop
def new_test_loop(self, gen=None):
    if gen is not None:  # the test drives TestLoop's clock itself (advance_time, a generator of timeouts)
        return _stock_new_test_loop(self, gen)
    made[0] += 1
    loop = VirtualLoop()
    self.set_event_loop(loop)
    return loop
test_utils.TestCase.new_test_loop = new_test_loop

name = sys.argv[1]
suite = unittest.defaultTestLoader.loadTestsFromName(f"test.test_asyncio.{name}")
result = unittest.TestResult()
suite.run(result)

def refused(text):
    return "NotAllowed" in text

out = {"module": name, "loops": made[0], "run": result.testsRun, "skipped": len(result.skipped),
       "expected_failures": len(result.expectedFailures), "failed": [], "refused": []}
known = json.loads(sys.argv[3])
out["known"] = []
for test, text in result.failures + result.errors + [(t, "unexpected success") for t in result.unexpectedSuccesses]:
    entry = {"test": test.id().removeprefix("test.test_asyncio."), "error": text}
    (out["known"] if entry["test"] in known else out["refused"] if refused(text) else out["failed"]).append(entry)
print("\n@@RESULT@@" + json.dumps(out))
"""


def modules() -> list[str]:
    """Every module of the interpreter's test.test_asyncio (raises ImportError if it ships none)."""
    import test.test_asyncio as package

    return sorted(m.name for m in pkgutil.iter_modules(package.__path__))


def run_module(name: str, timeout: float = 600.0) -> dict:
    """One module's counts: run, skipped, failed (list), refused (list)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, name, str(ROOT), json.dumps(KNOWN)],
            capture_output=True,
            text=True,
            env=env,
            cwd=ROOT,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {
            "module": name,
            "run": 0,
            "skipped": 0,
            "failed": [{"test": name, "error": "timed out"}],
            "refused": [],
            "known": [],
            "crashed": f"timed out after {timeout:.0f} s",
        }
    marker = out.stdout.rfind("@@RESULT@@")
    if marker < 0:
        return {
            "module": name,
            "run": 0,
            "skipped": 0,
            "failed": [],
            "refused": [],
            "known": [],
            "crashed": f"exit {out.returncode}: {out.stderr[-1500:]}",
        }
    return json.loads(out.stdout[marker + len("@@RESULT@@") :])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="test.test_asyncio modules (default: every one it can run)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each failure's traceback")
    args = parser.parse_args(argv)
    try:
        names = args.modules or [m for m in modules() if REFUSED_MODULES.get(m) is None]
    except ImportError:
        print(
            "this Python ships no test.test_asyncio (install its test package, e.g. Debian's "
            "libpython3.X-testsuite, or use a python.org or pyenv build)",
            file=sys.stderr,
        )
        return 2
    results = [run_module(name) for name in names]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results, args.verbose)
    return 1 if any(r["failed"] or r.get("crashed") for r in results) else 0


def _print(results: list[dict], verbose: bool) -> None:
    print(
        f"{'module':<22} {'run':>5} {'passed':>6} {'skipped':>7} {'refused':>7} {'known':>5} {'failed':>6} {'loops':>6}"
    )
    for r in results:
        passed = r["run"] - r["skipped"] - len(r["failed"]) - len(r["refused"]) - len(r["known"])
        print(
            f"{r['module']:<22} {r['run']:>5} {passed:>6} {r['skipped']:>7} {len(r['refused']):>7} "
            f"{len(r['known']):>5} {len(r['failed']):>6} {r.get('loops', 0):>6}"
            + (f"  CRASHED {r['crashed'][:200]}" if r.get("crashed") else "")
        )
        for f in r["known"]:
            print(f"    known {f['test']}: {KNOWN[f['test']]}")
        for f in r["failed"]:
            last = f["error"].strip().splitlines()[-1] if f["error"].strip() else ""
            print(f"    FAIL {f['test']}: {last[:150]}")
            if verbose:
                print("      " + f["error"].replace("\n", "\n      "))


if __name__ == "__main__":
    sys.exit(main())
