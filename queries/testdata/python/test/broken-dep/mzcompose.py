from materialize.fragile import broken  # noqa: F401
from materialize.mzcompose.composition import Composition


def workflow_default(c: Composition) -> None:
    pass
