"""The small PACELC sweep the sweep's and the report's tests share."""

from capsim.cap.pacelc import Sweep

SWEEP = Sweep(seed=2, trials=500, model_trials=20000, waits_ms=(0, 2, 10))
