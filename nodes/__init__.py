"""capsim's protocol library: the systems whose trade-offs capsim exists to show."""

__all__: list[str] = []
