"""The CAP demonstration: the same workload and partition against several configurations."""

from capsim.cap.configs import BUILTIN, DEFAULT, Config, choose
from capsim.cap.experiment import Plan, run_config

__all__ = ["BUILTIN", "DEFAULT", "Config", "Plan", "choose", "run_config"]
