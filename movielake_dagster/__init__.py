"""movielake: a data lake for movie ratings in three layers (staging, cleanse, access).

Three parts, imported in one direction (``movielake_dagster_tests/test_imports.py`` checks it):
the core (``datasets``, ``settings``, ``errors``, ``lake``, ``aws``, ``transforms``, the ``catalog``
library), the Dagster code location built on it (``definitions``, ``code_location``, ``assets``,
``checks``, ``automation``, ``io_managers``, ``resources``) and the ``tools`` around it (the
``movielake`` CLI, doctor, SQL, benchmarks, the generator). Importing this package imports nothing.
"""
