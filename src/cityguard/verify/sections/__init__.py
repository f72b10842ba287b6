"""Fact sections of each area, registered on import (one module per area or concern; `_common`
holds the helpers they share and registers nothing).

Importing this package imports every module in it, so adding an area's facts is adding a
file here: no list to keep in step. Every snippet is read-only and prints `@@error` plus the
reason when it cannot gather; every parser is a pure function of the lines the snippet
printed, so it is unit-tested on real output.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
