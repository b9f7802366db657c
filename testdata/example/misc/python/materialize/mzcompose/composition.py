"""A composition of services."""

from materialize.mzcompose import service  # noqa: F401


class Composition:
    def up(self, *services: str) -> None:
        pass
