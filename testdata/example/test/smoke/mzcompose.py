"""Smoke test: the server alone.

It does not use testdrive; this docstring says "mzbuild": "testdrive" only in prose.
"""

from materialize.mzcompose.composition import Composition
from materialize.mzcompose.services.postgres import Postgres
from materialize.mzcompose.services.server import Server

SERVICES = [Server(), Postgres()]


def workflow_default(c: Composition) -> None:
    c.up("server")
