from materialize.mzcompose.service import Service


class Cockroach(Service):
    def __init__(self, name: str = "cockroach") -> None:
        super().__init__(name=name, config={"mzbuild": "cockroach"})
