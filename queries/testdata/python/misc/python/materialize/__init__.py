"""The fixture's root package (not listed in closures, like the reference)."""

import os
from pathlib import Path

MZ_ROOT = Path(os.environ.get("MZ_ROOT", "."))
