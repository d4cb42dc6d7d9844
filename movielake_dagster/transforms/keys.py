"""Key columns shaped for Spark's sort, which the windows over (user_id, movie_id) spend their time in."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def grouping_columns(df: DataFrame, key: list[str]) -> list[Column]:
    """Columns that group rows exactly like ``key``: two int columns packed into one bigint.

    Spark's sort compares an 8-byte prefix of each row first. With an (int, int) key the prefix holds
    only the first column, so the rows of one user are compared field by field; a packed bigint is
    its own prefix, and radix-sortable. Other keys are returned as they are.
    """
    types = dict(df.dtypes)
    if len(key) == 2 and all(types.get(k) == "int" for k in key):
        high, low = (F.col(k).cast("bigint") for k in key)
        return [F.shiftleft(high, 32).bitwiseOR(low.bitwiseAND(F.lit(0xFFFFFFFF)))]
    return [F.col(k) for k in key]
