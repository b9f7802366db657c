"""Helpers of the cluster tests: the only way `test/cluster` reaches testdrive."""

from materialize.mzcompose.services.testdrive import Testdrive


def cluster_services() -> list:
    return [Testdrive(name="testdrive-cluster")]
