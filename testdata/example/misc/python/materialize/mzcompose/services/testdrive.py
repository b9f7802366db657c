from materialize.mzcompose.service import Service


class Testdrive(Service):
    def __init__(self) -> None:
        config = {}
        config["mzbuild"] = "testdrive"
        super().__init__(name="testdrive", config=config)
