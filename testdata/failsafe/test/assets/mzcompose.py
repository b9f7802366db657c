"""Serves the copied assets."""

from materialize.mzcompose.composition import Composition
from materialize.mzcompose.service import Service

SERVICES = [Service("assets", {"mzbuild": "assets"})]


def workflow_default(c: Composition) -> None:
    c.up("assets")
