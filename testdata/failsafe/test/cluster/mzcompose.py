"""Cluster tests: testdrive comes from a helper module."""

from materialize.cluster.util import cluster_services
from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.materialized import Materialized

SERVICES = [Materialized(), *cluster_services()]


def workflow_default(c: Composition) -> None:
    c.up("materialized")
