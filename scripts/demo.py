"""A 3-node cluster, a partition, a heal, and what each client saw (same as `capsim demo`)."""

import sys

from capsim.demos.partition import main

if __name__ == "__main__":
    sys.exit(main(seed=int(sys.argv[1]) if len(sys.argv) > 1 else 1))
