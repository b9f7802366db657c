from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.server import Server

SERVICES = [Server()]


def workflow_default(c: Composition) -> None:
    c.up("server")
