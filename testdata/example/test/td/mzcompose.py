from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.server import Server
from materialize.mzcompose.services.testdrive import Testdrive

SERVICES = [Server(), Testdrive()]


def workflow_default(c: Composition) -> None:
    c.up("server", "testdrive")
