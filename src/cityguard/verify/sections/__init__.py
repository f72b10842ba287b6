"""Fact sections of each area, registered on import (one module per area).

Importing this package imports every module in it, so adding an area's facts is adding a
file here: no list to keep in step.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
