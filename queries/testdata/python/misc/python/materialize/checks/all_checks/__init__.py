# Imports every sibling module; the names are computed at run time.
import glob
from importlib import import_module
from os.path import basename, dirname, join

for f in glob.glob(join(dirname(__file__), "*.py")):
    if basename(f) != "__init__.py":
        import_module(f".{basename(f).removesuffix('.py')}", __package__)
