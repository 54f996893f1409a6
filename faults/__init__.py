"""capsim's fault policy: when and how to break things (nemeses, schedules, scenarios)."""

__all__: list[str] = []
