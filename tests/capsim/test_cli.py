"""The capsim command line: version, help, and errors without tracebacks."""

import subprocess
import sys

import pytest

from capsim import __version__
from capsim.cli import main


def test_version_prints_the_package_version(capsys):
    """capsim --version prints 'capsim <version>'."""
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"capsim {__version__}"


def test_no_command_prints_help_and_exits_2(capsys):
    """capsim alone lists the commands and exits 2."""
    assert main([]) == 2
    assert "demo" in capsys.readouterr().out


def test_an_unknown_demo_is_a_usage_error_not_a_traceback(capsys):
    """capsim demo nosuch exits 2 with a message naming the demos."""
    assert main(["demo", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "no demo called 'nosuch'" in err and "partition" in err and "Traceback" not in err


def test_python_dash_m_capsim_works():
    """python -m capsim --version runs the same entry point."""
    out = subprocess.run([sys.executable, "-m", "capsim", "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.startswith("capsim ")
