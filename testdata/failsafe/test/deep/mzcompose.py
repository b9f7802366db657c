"""Uses a service class through an alias."""

from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.deep import Deep

SERVICES = [Deep()]


def workflow_default(c: Composition) -> None:
    c.up("deep")
