"""The catalogs as a Dagster resource: the Iceberg catalog of the cleanse and access tables, and the
crawler's catalog (local SQLite or AWS Glue) of the staging files; one setting chooses both."""

from pathlib import Path

import dagster as dg

from movielake_dagster.catalog import Catalog, Crawler, build_crawler, iceberg_catalog, open_catalog
from movielake_dagster.catalog.iceberg import IcebergCatalog, live_rows, partition_values
from movielake_dagster.datasets import Dataset
from movielake_dagster.resources.lake import LakeResource


class CatalogResource(dg.ConfigurableResource):
    """The metadata catalog: ``local`` (an embedded SQLite file) or ``glue`` (AWS Glue Data Catalog)."""

    lake: LakeResource
    backend: str = "local"
    path: str = ""
    glue_endpoint: str = ""
    region: str = "us-east-1"

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.iceberg().prepare()

    def catalog(self) -> Catalog:
        return open_catalog(self.backend, self.lake.location, self.path, self.glue_endpoint, self.region)

    def crawler(self) -> Crawler:
        return build_crawler(self.lake.location, self.lake.store, self.catalog(), self.iceberg())

    def iceberg(self) -> IcebergCatalog:
        return iceberg_catalog(self.backend, self.lake.location, self.path, self.glue_endpoint, self.region,
                               self.lake.s3_endpoint)

    def table_location(self, dataset: Dataset) -> str:
        """The URI of the dataset's table: its SPEC location (``file:///...`` or ``s3://...``)."""
        uri = self.lake.uri(dataset)
        return uri if uri.startswith("s3://") else Path(uri).resolve().as_uri()

    def describe_table(self, dataset: Dataset, branch: str = "main") -> dict:
        """Materialization metadata of the snapshot a branch of the table points at, read from Iceberg's
        own metadata (no Spark job): rows, snapshot and parent, operation, schema, location, a preview."""
        from movielake_dagster.io_managers.iceberg import PREVIEW_ROWS, markdown_preview

        table = self.iceberg().table(dataset.layer, dataset.name)
        snapshot = table.snapshot_by_name(branch)
        summary = snapshot.summary if snapshot is not None else None
        extra = summary.additional_properties if summary is not None else {}
        columns = dataset.column_names
        preview = table.scan(limit=PREVIEW_ROWS, selected_fields=tuple(columns),
                             snapshot_id=snapshot.snapshot_id if snapshot else None).to_arrow().to_pylist()
        metadata = {
            "dagster/row_count": live_rows(summary) if summary is not None else 0,
            "dagster/column_schema": dataset.table_schema(),
            "dagster/uri": dg.MetadataValue.path(table.location()),
            "dagster/table_name": f"{dataset.layer}.{dataset.name}",
            "movielake/table_format": "iceberg",
            "movielake/snapshot_id": str(snapshot.snapshot_id) if snapshot else "",
            "movielake/parent_snapshot_id": str(snapshot.parent_snapshot_id or "") if snapshot else "",
            "movielake/operation": summary.operation.value if summary is not None else "",
            "movielake/added_records": int(extra.get("added-records", 0)),
            "movielake/deleted_records": int(extra.get("deleted-records", 0))
            + int(extra.get("added-position-deletes", 0)),
            "preview": dg.MetadataValue.md(markdown_preview(preview, columns)),
        }
        if dataset.partition_by and snapshot is not None:
            values = partition_values(table, snapshot.snapshot_id)
            metadata["partitions"] = dg.MetadataValue.json(values)
        return metadata
