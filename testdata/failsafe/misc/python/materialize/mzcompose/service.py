"""Base class of services."""


class Service:
    def __init__(self, name: str, config: dict) -> None:
        self.name = name
        self.config = config
