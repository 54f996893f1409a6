"""Nodes and the oracle for the discovery tests: the demo's (``capsim.demos.discovery``).

``LoggedInstance`` keeps ``(sent, acknowledged)`` for each heartbeat a
registry acknowledged; ``Looker`` looks a service up every ``every`` seconds
and keeps (asked, answered, instances or error); ``Caller`` resolves through a
``Resolver`` and sends requests in turn; ``missed`` names the instances an
answer left out although an acknowledged heartbeat kept them alive
throughout the lookup (the CP registry's promise is that there are none).
"""

from capsim.demos.discovery import Caller, LoggedInstance, Looker, missed

__all__ = ["Caller", "LoggedInstance", "Looker", "missed"]
