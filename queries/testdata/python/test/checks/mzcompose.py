import materialize.checks.all_checks  # noqa: F401
from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.cockroach import Cockroach

SERVICES = [Cockroach()]


def workflow_default(c: Composition) -> None:
    pass
