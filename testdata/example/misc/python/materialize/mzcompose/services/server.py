from materialize.mzcompose.service import Service


class Server(Service):
    def __init__(self, name: str = "server", image: str = "server") -> None:
        config = {"mzbuild": image}
        super().__init__(name=name, config=config)
