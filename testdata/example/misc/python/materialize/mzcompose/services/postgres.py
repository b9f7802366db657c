from materialize.mzcompose.service import Service


class Postgres(Service):
    def __init__(self) -> None:
        super().__init__(name="postgres", config={"image": "postgres:16"})
