"""The README's commands and examples work as written."""

import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_readme_starts_with_exactly_two_commands():
    """The first code block holds two commands: install + main job, install + tests."""
    first = README.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(first) == 2
    assert "pip install" in first[0] and "capsim" in first[0]
    assert "pip install" in first[1] and "pytest" in first[1]
    assert README.index("```sh") < README.index("## ")


def test_the_tour_example_runs_as_written():
    """The tour's Python example runs in a fresh interpreter and prints what it says."""
    out = subprocess.run([sys.executable, "-c", blocks("python")[0]], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "read 1 at virtual time" in out.stdout
    assert "n1 is cut off" in out.stdout


def test_the_pytest_example_passes(pytester):
    """The README's async pytest example passes with the plugin's sim fixture."""
    tour = blocks("python")[0].split("\nsim = ")[0]  # the imports and the Register class
    pytester.makepyfile(test_readme_example=tour + "\n\n" + blocks("python")[1])
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
