from materialize.mzcompose.service import Service, ServiceConfig


class Postgres(Service):
    """Parameter style: the default literal plus the composition's arguments."""

    def __init__(
        self,
        name: str = "postgres",
        mzbuild: str = "postgres",
        image: str | None = None,
    ) -> None:
        config: ServiceConfig = {"image": image} if image else {"mzbuild": mzbuild}
        super().__init__(name=name, config=config)


class PostgresMetadata(Postgres):
    """Subclass style: its images are its base class's."""

    def __init__(self, restart: str = "no") -> None:
        super().__init__(name="postgres-metadata")
