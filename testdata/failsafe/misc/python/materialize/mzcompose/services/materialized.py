from materialize.mzcompose.service import Service


class Materialized(Service):
    def __init__(self) -> None:
        super().__init__(name="materialized", config={"mzbuild": "materialized"})
