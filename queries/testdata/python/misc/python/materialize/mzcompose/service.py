from typing import TypedDict


class ServiceConfig(TypedDict, total=False):
    mzbuild: str
    image: str


class Service:
    """A service: `{"mzbuild": "not-an-image"}` in a docstring never counts."""

    def __init__(self, name: str, config: ServiceConfig) -> None:
        self.name = name
        self.config = config
