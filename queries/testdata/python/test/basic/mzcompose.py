"""Basic composition: a class with a literal, a parameter passed by keyword
and by position, and a local variable."""

from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.materialized import (
    MaterializeEmulator,
    Materialized,
)
from materialize.mzcompose.services.postgres import Postgres

SERVICES = [
    Materialized(),
    MaterializeEmulator(),
    Postgres(mzbuild="postgres-custom"),
    Postgres("second", "postgres-positional"),
]


def workflow_default(c: Composition) -> None:
    c.up("materialized")
