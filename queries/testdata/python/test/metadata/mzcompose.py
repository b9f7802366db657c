from materialize.mzcompose import get_default_system_parameters
from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services import testdrive
from materialize.mzcompose.services.metadata_store import CockroachOrPostgresMetadata

SERVICES = [
    CockroachOrPostgresMetadata(),
    testdrive.Testdrive(mzbuild="testdrive-alt"),
]


def workflow_default(c: Composition) -> None:
    get_default_system_parameters()
