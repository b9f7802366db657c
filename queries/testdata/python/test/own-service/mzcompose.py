from materialize.mzcompose.composition import Composition, Service

SERVICES = [
    Service("own", {"mzbuild": "own-image"}),
]


def workflow_default(c: Composition) -> None:
    pass
