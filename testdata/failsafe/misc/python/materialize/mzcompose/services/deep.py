from materialize.mzcompose.service import Service


class DeepBase(Service):
    def __init__(self) -> None:
        super().__init__(name="deep", config={"mzbuild": "deep"})


Deep = DeepBase
