"""The tools around the lake, outside the Dagster code location (no Dagster process loads them): the
``movielake`` CLI and its runner, ``doctor``, the SQL shell and the SPEC's questions, the data
dictionary, the benchmarks with their seed baseline, and the test-data generator."""
