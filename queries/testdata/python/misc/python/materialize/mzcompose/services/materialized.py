from materialize.mzcompose import DEFAULT_MZ_VOLUMES
from materialize.mzcompose.service import Service, ServiceConfig
from materialize.mzcompose.services.metadata_store import METADATA_STORE


class Materialized(Service):
    """Subscript style: `config["mzbuild"] = ...`."""

    def __init__(self, name: str = "materialized", image: str | None = None) -> None:
        config: ServiceConfig = {}
        if image:
            config["image"] = image
        else:
            config["mzbuild"] = "materialized"
        super().__init__(name=name, config=config)


class MaterializeEmulator(Service):
    """Local-variable style."""

    def __init__(self) -> None:
        name = "materialized-emulator"
        super().__init__(name=name, config={"mzbuild": name})
