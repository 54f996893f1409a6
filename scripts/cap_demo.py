"""CAP, measured: the same as `capsim cap` (every option of it works here too).

python scripts/cap_demo.py
python scripts/cap_demo.py --seed 7 --out report/
"""

import sys

from capsim.cli import main

if __name__ == "__main__":
    sys.exit(main(["cap", *sys.argv[1:]]))
