"""A queue for tests: the demo's cluster (three brokers, four partitions, a publisher, a group, a sink), measured.

``queue_cluster`` builds it (``capsim.demos.queue.build``); ``measure`` reads
the outcome from the brokers' logs and the sink's log (``Outcome``).
"""

from capsim.demos.queue import BROKERS, TOPICS, Outcome, measure
from capsim.demos.queue import build as queue_cluster

__all__ = ["BROKERS", "TOPICS", "Outcome", "measure", "queue_cluster"]
