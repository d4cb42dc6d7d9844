"""Cleanse and access layers: Spark DataFrames stored as Parquet, published atomically."""


from dataclasses import dataclass
from typing import Any

import dagster as dg
from pyspark.sql import Observation
from pyspark.sql import functions as F

from movielake_dagster.datasets import Dataset, dataset_for
from movielake_dagster.lake import spark_uri
from movielake_dagster.resources.lake import LakeResource
from movielake_dagster.resources.spark import SparkResource

PREVIEW_ROWS = 5


@dataclass(frozen=True)
class PartitionsUpdate:
    """An asset's output that replaces only some partitions of its (partitioned) dataset.

    ``df`` holds the complete new rows of the partitions ``values``; those in ``emptied`` have no
    rows any more and are deleted. The other partitions are not touched.
    """

    df: Any
    values: tuple = ()
    emptied: tuple = ()


def read_dataset(session, dataset: Dataset, uri: str):
    """A stored dataset read with its declared schema, so that an empty one (no Parquet file was
    written for zero rows) reads as an empty table instead of failing schema inference."""
    reader = session.read.schema(dataset.spark_ddl()) if dataset.columns else session.read
    return reader.parquet(spark_uri(uri))


def current_table(session, lake: LakeResource, dataset: Dataset):
    """The dataset as the lake holds it now, or None before its first materialization."""
    if not any(True for _ in lake.store.list_files(lake.uri(dataset))):
        return None
    return read_dataset(session, dataset, lake.uri(dataset))


class SparkParquetIOManager(dg.ConfigurableIOManager):
    """Writes an asset's DataFrame to its dataset's location and reads it back for downstream assets.

    A write goes to a hidden sibling folder first and replaces the dataset only once Spark has
    committed it, so a failed run leaves the previous version in place and readers never see half
    a dataset (on a local lake the swap is two directory renames; see the README for S3).
    """

    spark: SparkResource
    lake: LakeResource

    def handle_output(self, context: dg.OutputContext, df) -> None:
        if df is None:
            return
        dataset = dataset_for(context.asset_key)
        final_uri = self.lake.uri(dataset)
        for folder in self.lake.sweep_stale_siblings(dataset):
            context.log.info(f"removed {folder}, left by a run that did not finish")
        if isinstance(df, PartitionsUpdate):
            self._replace_partitions(context, dataset, final_uri, df)
            return
        temp_uri = self.lake.hidden_sibling(dataset, "writing", context.run_id)
        written = Observation()  # the row count, taken by the write itself instead of a count job after it
        writer = df.observe(written, F.count(F.lit(1)).alias("rows")).write.mode("overwrite")
        if dataset.partition_by:
            writer = writer.partitionBy(*dataset.partition_by)
        writer.parquet(spark_uri(temp_uri))
        self.lake.store.replace_tree(temp_uri, final_uri)
        context.add_output_metadata(self._describe(dataset, final_uri, rows=written.get["rows"]))

    def _replace_partitions(self, context: dg.OutputContext, dataset: Dataset, final_uri: str,
                            update: PartitionsUpdate) -> None:
        """Spark's dynamic partition overwrite: only the partitions present in ``update.df`` are
        replaced, each by a rename from Spark's hidden staging folder once all tasks committed; a
        failed write leaves every old partition in place."""
        (column,) = dataset.partition_by
        if len(update.emptied) < len(update.values):
            update.df.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy(
                column
            ).parquet(spark_uri(final_uri))
        for value in update.emptied:
            self.lake.store.delete_tree(f"{final_uri}/{column}={value}")
        metadata = self._describe(dataset, final_uri)
        metadata["movielake/rewritten_partitions"] = dg.MetadataValue.json([str(v) for v in update.values])
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext):
        dataset = dataset_for(context.upstream_output.asset_key)
        return read_dataset(self.spark.get_session(), dataset, self.lake.uri(dataset))

    def _describe(self, dataset: Dataset, uri: str, rows: int | None = None) -> dict:
        """Row count (counted from what was written unless the write counted ``rows``), schema with
        descriptions, location, and a preview read from what was written."""
        written = read_dataset(self.spark.get_session(), dataset, uri)
        metadata = {
            "dagster/row_count": written.count() if rows is None else rows,
            "dagster/column_schema": dataset.table_schema(),
            "dagster/uri": dg.MetadataValue.path(uri),
            "preview": dg.MetadataValue.md(markdown_preview(written.limit(PREVIEW_ROWS).collect(), written.columns)),
        }
        if dataset.partition_by:
            values = sorted(r[0] for r in written.select(*dataset.partition_by).distinct().collect())
            metadata["partitions"] = dg.MetadataValue.json([str(v) for v in values])
        return metadata


def markdown_preview(rows: list, columns: list[str]) -> str:
    """A small Markdown table of rows (Spark Rows or tuples)."""

    def cell(value) -> str:
        text = "" if value is None else str(value)
        return text.replace("|", "\\|").replace("\n", " ")[:60]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
