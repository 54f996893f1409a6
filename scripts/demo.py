"""A 3-node cluster, a partition, a heal, and what each client saw (same as `capsim demo`)."""

import argparse
import sys

from capsim.demos.partition import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seed", nargs="?", type=int, default=1, help="the run's seed (default 1)")
    sys.exit(main(seed=parser.parse_args().seed))
