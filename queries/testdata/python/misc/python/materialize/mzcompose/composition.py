from materialize.mzcompose.service import Service


class Composition:
    def __init__(self, name: str) -> None:
        self.name = name

    def up(self, *services: str) -> None:
        # import materialize.not_imported  (a comment, not an import)
        pass


__all__ = ["Composition", "Service"]
