"""The Dagster entry point (``[tool.dagster]`` in pyproject.toml, workspace.yaml): ``defs``.

Nothing imports this module: code that needs the definitions for given settings calls
``code_location.build_definitions``. The settings come from the environment (``MOVIELAKE_*``) when
the code location loads, not at import.
"""

import dagster as dg

from movielake_dagster.code_location import build_definitions
from movielake_dagster.settings import Settings


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
