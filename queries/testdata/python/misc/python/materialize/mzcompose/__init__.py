"""Shared mzcompose helpers."""

from typing import TYPE_CHECKING

from materialize import ui

if TYPE_CHECKING:
    from materialize.typing_only import Hint

DEFAULT_MZ_VOLUMES = ["mzdata:/mzdata"]


def get_default_system_parameters() -> dict[str, str]:
    # Imported lazily: only listed with --lazy-imports.
    from materialize import heavy

    return heavy.PARAMETERS
