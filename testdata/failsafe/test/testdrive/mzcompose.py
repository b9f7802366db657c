"""Testdrive: imports its services directly."""

from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.materialized import Materialized
from materialize.mzcompose.services.testdrive import Testdrive

SERVICES = [Materialized(), Testdrive()]


def workflow_default(c: Composition) -> None:
    c.up("materialized", "testdrive")
