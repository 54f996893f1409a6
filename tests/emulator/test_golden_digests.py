"""Pinned trace digests: kernel changes (speed-ups included) keep every run bit for bit.

The digests were recorded from main at 02a8345 (FIFO links with a reordered
share) before the kernel's fast paths were rewritten; each run is described
in ``tests/common/golden.py``. The two ``hosts-*`` runs (TCP segments, bodies
included, between aiohttp and stream programs on hosts) were recorded from
main at 09d8523 and recorded again when a late ACK of a retransmitted FIN
stopped leaving the FIN unacknowledged (both runs met that bug). A change that moves one of them changes what a
seed replays: if that is intended, say so in the commit and record them again
with ``python -m tests.common.golden``.

The ``hosts-*`` runs trace programs made of asyncio's and aiohttp's own code
(streams, transports, HTTP keep-alive), and that code differs between Python
versions: each supported version has its own pair, recorded with aiohttp 3.14
(another aiohttp minor version is skipped, saying so). Every other run's
digest is the same on every version.
"""

import sys

import aiohttp
import pytest

from tests.common import golden

PINNED = {
    "chaos_run-0": "f46bd09eaa2b6223a886e4613a1eac89ec0a3898de6becc7d3b1afee37640046",
    "chaos_run-1": "545f4b7bb5c313408f56c5e3e7b3cda1909fbcb557c2ea9bce862de9762a3304",
    "chaos_run-2": "8572d0b48afb884050ed727e1787fea5f91d3bb271b3c9bd3869e49446d396b1",
    "chaos_run-3": "edcde492f2e8b347c8d3a71bea4eddef21b88c9a7e24f75f90a84537a1170108",
    "chaos_run-4": "11effd40b6548182d9673914e35d927d55e97fd53815cceabda6d1b5e56087eb",
    "chaos_run-5": "223ef71f05cf4577d664107559c35e6fe2da19847387645cb36014e2bbf44e3d",
    "faults-constant": "c0b94e31b29fc188bc234a8ad15c1bef9266081e8ad30e32d62994e6ffecab61",
    "faults-fifo-0": "fad3b932c7b04141ab84665dcd09749eb83c2c44ccec49a49228122e7d7870cc",
    "faults-fifo-1": "a6d19fb2b0a27b6b15f52384fa983f9313b2f079c1c57427a130b81fcb31b958",
    "faults-fifo-2": "e84473049abd8d4b0f5ce400b760fcd40ce438403b4736dd36df36443c253207",
    "faults-nofifo-0": "2c6fb9ebd27db4b5beaaa8b156372ae429d4a149429821952a93d8fa55918e08",
    "faults-nofifo-1": "66ce80809f98d8a0eaaf6a1f2fdab1007e1c31955aa47e27eed20923b9d470e9",
    "faults-nofifo-2": "08e5fda114e3b0e66533ff8040541ba9b6cda2160118691f4ffe04c41b30dba5",
    "faults-types-only": "7e6bb50e058da0244228f4c29d23ad16420ff84596a34723c602fe097162ec02",
    "pingpong-bodies": "7418a3a4f8122cf963b068e385fa93f7d39ec07d03892d336aa7204c24b0ecb4",
    "pingpong-types": "cf54f85f8fc5c2ac8eaf2145d4fc841bf94033f830f94f7bd23e9154768df7be",
    "ring-bodies": "f8dfdd2badc6303145097b4106220ffbf9140dd6d82ad01f78391609314d9c53",
    "ring-types": "e07ab4b80afe5bba2e9134aadaa0a9cf5a15bcbb51fd8df85b0670abca16b98d",
}

HOSTS = {  # Python (major, minor) -> the hosts-* digests, with aiohttp 3.14
    (3, 11): {
        "hosts-fifo": "9cd42f56b2e68974993ee38f3d31ddce8376b169823163e85b8d12f596edc49b",
        "hosts-nofifo": "cdccdfc229565c2ab9759da69cd430955ca22e9c2b54fb13b8b2ad3688d5323b",
    },
    (3, 12): {
        "hosts-fifo": "1bafb3f09d826a10517bc3c27006b079ff303466ad91202cf71a2c7b91b3ae3d",
        "hosts-nofifo": "02986543693741e6f64c0f882c740c68af586784daa998dff8ad857ef006ccbe",
    },
    (3, 13): {
        "hosts-fifo": "d6185be582690e87ef5ed5582c54b52bab3abe279c9091444d7540ef70696e63",
        "hosts-nofifo": "cea4dde4cf4d176394fe92c2db6e86fe841d96a1ccc5d48d65c9f8144984a2f4",
    },
}
AIOHTTP = "3.14"


@pytest.fixture(scope="module")
def digests():
    return golden.digests()


@pytest.mark.parametrize("name", sorted(PINNED))
def test_digest_is_unchanged(digests, name):
    """The run replays exactly as it did before the kernel was rewritten."""
    assert digests[name] == PINNED[name]


@pytest.mark.parametrize("name", ["hosts-fifo", "hosts-nofifo"])
def test_host_digest_is_unchanged(digests, name):
    """The hosts' runs replay exactly as recorded on this Python version."""
    pinned = HOSTS.get(sys.version_info[:2])
    if pinned is None or not aiohttp.__version__.startswith(AIOHTTP + "."):
        pytest.skip(
            f"hosts-* digests are recorded for Python 3.11-3.13 with aiohttp {AIOHTTP}, not "
            f"Python {sys.version_info[0]}.{sys.version_info[1]} with aiohttp {aiohttp.__version__}"
        )
    assert digests[name] == pinned[name]


def test_every_run_is_pinned(digests):
    """No run in tests/common/golden.py goes unchecked."""
    assert sorted(digests) == sorted([*PINNED, *HOSTS[3, 11]])
    assert all(sorted(pair) == sorted(HOSTS[3, 11]) for pair in HOSTS.values())
