"""Cleanse and access layers: Spark DataFrames stored as Parquet, published atomically."""


import dagster as dg

from movielake_dagster.datasets import Dataset, dataset_for
from movielake_dagster.lake import spark_uri
from movielake_dagster.resources.lake import LakeResource
from movielake_dagster.resources.spark import SparkResource

PREVIEW_ROWS = 5


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
        parent, _, name = final_uri.rstrip("/").rpartition("/")
        temp_uri = f"{parent}/.{name}.__writing-{context.run_id[:8]}"  # hidden: no reader picks it up
        writer = df.write.mode("overwrite")
        if dataset.partition_by:
            writer = writer.partitionBy(*dataset.partition_by)
        writer.parquet(spark_uri(temp_uri))
        self.lake.store.replace_tree(temp_uri, final_uri)
        context.add_output_metadata(self._describe(dataset, final_uri))

    def load_input(self, context: dg.InputContext):
        dataset = dataset_for(context.upstream_output.asset_key)
        return self.spark.get_session().read.parquet(self.lake.spark_uri(dataset))

    def _describe(self, dataset: Dataset, uri: str) -> dict:
        """Row count, schema with descriptions, location and a preview, read from what was written."""
        written = self.spark.get_session().read.parquet(spark_uri(uri))
        metadata = {
            "dagster/row_count": written.count(),
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
