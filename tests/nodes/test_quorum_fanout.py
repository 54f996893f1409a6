"""The quorum store's fanout: answers counted once per distinct replica."""

import asyncio

from nodes.quorum_fanout import Fanout


class Coordinator:
    """What a Fanout needs of its node: every replica answers after 1 ms."""

    name, rpc_timeout = "n0", 0.1

    def suspected(self, peer):
        return False

    async def call(self, dest, body, timeout):
        await asyncio.sleep(0.001)
        return {"type": "q_put_ok", "siblings": []}

    def spawn(self, coro, name=None):
        return asyncio.get_running_loop().create_task(coro)

    def local_request(self, body, hint):
        return []


async def test_a_replica_asked_twice_counts_once_toward_the_quorum(sim):
    """n1 listed twice and n2 once: two distinct answers, so W=3 is not reached and W=2 is."""
    for need, reached in ((3, False), (2, True)):
        fan = Fanout(Coordinator(), {"type": "q_put"}, need, spares=[], deadline=0.2)
        fan.start([("n1", None), ("n1", None), ("n2", None)])
        assert await fan.reached is reached
        await fan.settled
        assert [node for node, _, _ in fan.replies] == ["n1", "n2"]


async def test_the_coordinators_own_copy_counts_once_too(sim):
    """The coordinator listed twice is one answer, served in place."""
    fan = Fanout(Coordinator(), {"type": "q_get"}, 2, spares=[], deadline=0.2)
    fan.start([("n0", None), ("n0", None)])
    assert await fan.reached is False and [node for node, _, _ in fan.replies] == ["n0"]
