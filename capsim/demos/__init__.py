"""Short demonstrations run by ``capsim demo NAME`` (and scripts/demo.py)."""

__all__ = ["DEMOS"]

#: demo name -> "module:function"; each function takes (seed, console) and returns an exit status.
DEMOS = {
    "partition": "capsim.demos.partition:main",
}
