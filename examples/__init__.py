"""Programs written without capsim, which capsim runs as hosts (see README, "Your own asyncio service under capsim")."""

__all__: list[str] = []
