"""Pure Spark transforms: DataFrames in, DataFrames out. No Dagster, no I/O, no global state.

Each layer's assets call these; unit tests call them with tiny DataFrames.
"""
