"""A composition of services."""


class Composition:
    def up(self, *services: str) -> None:
        pass
