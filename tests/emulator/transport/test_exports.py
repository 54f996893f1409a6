"""emulator.transport re-exports its public names with an explicit __all__."""

import emulator.transport as transport


def test_all_names_exist_and_public_names_are_listed():
    """Everything in __all__ exists, and every public class or function defined in the package is listed."""
    assert sorted(transport.__all__) == sorted(set(transport.__all__))
    assert all(hasattr(transport, name) for name in transport.__all__)
    public = {
        n
        for n, v in vars(transport).items()
        if not n.startswith("_") and callable(v) and getattr(v, "__module__", "").startswith("emulator.transport")
    }
    assert public <= set(transport.__all__), sorted(public - set(transport.__all__))
