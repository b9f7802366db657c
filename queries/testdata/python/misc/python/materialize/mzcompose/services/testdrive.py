from materialize.mzcompose.service import Service


class Testdrive(Service):
    def __init__(self, mzbuild: str = "testdrive", *, seed: int | None = None) -> None:
        super().__init__(name="testdrive", config={"mzbuild": mzbuild})
