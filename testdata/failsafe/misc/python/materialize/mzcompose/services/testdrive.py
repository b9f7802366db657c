from materialize.mzcompose.service import Service


class Testdrive(Service):
    def __init__(self, name: str = "testdrive", mzbuild: str = "testdrive") -> None:
        super().__init__(name=name, config={"mzbuild": mzbuild})
