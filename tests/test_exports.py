"""Each package re-exports its public names with an explicit __all__."""

import importlib

import pytest


@pytest.mark.parametrize(
    "package", ["emulator", "nodes", "faults", "emulator.check", "emulator.transport", "capsim.report"]
)
def test_all_names_exist_and_public_names_are_listed(package):
    """Everything in __all__ exists, and every public class or function is in __all__."""
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{package} has no __all__"
    assert sorted(exported) == sorted(set(exported)), "duplicates in __all__"
    for name in exported:
        assert hasattr(module, name), f"{package}.__all__ lists {name!r}, which does not exist"
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and callable(v) and getattr(v, "__module__", "").startswith(package)
    }
    assert public <= set(exported), f"public names missing from {package}.__all__: {sorted(public - set(exported))}"
