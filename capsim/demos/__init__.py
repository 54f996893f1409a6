"""Short demonstrations run by ``capsim demo NAME`` (and scripts/demo.py).

Each demo module's docstring begins with its one-line description (what
``capsim demo --list`` prints), and its function takes ``seed``,
``console``, ``out`` (write the report there), ``as_json`` (print the
figures as JSON) and ``quick`` (smaller sizes, where that matters).
"""

__all__ = ["DEMOS"]

#: demo name -> "module:function"; each function takes (seed, console, out, as_json, quick), returns an exit status.
DEMOS = {
    "partition": "capsim.demos.partition:main",
    "scaling": "capsim.demos.scaling:main",
    "caching": "capsim.demos.caching:main",
    "breaker": "capsim.demos.breaker:main",
    "multi-primary": "capsim.demos.multiprimary:main",
    "queue": "capsim.demos.queue:main",
    "edge": "capsim.demos.edge:main",
    "gateway": "capsim.demos.gateway:main",
    "discovery": "capsim.demos.discovery:main",
    "canary": "capsim.demos.canary:main",
    "microservices": "capsim.demos.microservices:main",
}
