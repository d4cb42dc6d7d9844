"""Spark caches held by one step and released when it ends (shared by the asset modules)."""

from pyspark.sql import DataFrame

ROWS_PER_CACHED_PARTITION = 1_000_000


def partitions_for(rows: int) -> int:
    """About one cached partition per million rows, at least one."""
    return max(1, -(-rows // ROWS_PER_CACHED_PARTITION))


class CachedFrames:
    """The DataFrames a step caches, released when the block ends: a step's outputs are written as
    they are yielded, so around the yields this frees the memory for later steps once all are
    stored (or the step failed)."""

    def __init__(self):
        self._frames: list[DataFrame] = []

    def cache(self, df: DataFrame, partitions: int | None = None) -> DataFrame:
        """``df`` persisted; with ``partitions``, first coalesced to that many. A cached table keeps
        the partitions of the shuffle that made it (32 after a window or an aggregation), and every
        later job over it runs a task per partition: for the 10,681 movies and 69,878 users of
        MovieLens 10M that was most of the cleansing steps' time (see :func:`partitions_for`)."""
        if partitions is not None:
            df = df.coalesce(partitions)
        df = df.persist()
        self._frames.append(df)
        return df

    def __enter__(self) -> "CachedFrames":
        return self

    def __exit__(self, *_) -> None:
        for frame in self._frames:
            frame.unpersist()
