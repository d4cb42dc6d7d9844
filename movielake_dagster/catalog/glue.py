"""The AWS Glue Data Catalog backend (boto3): what Athena, Redshift Spectrum and EMR read.

Tables are written the way a Glue crawler writes them, so Athena queries them as they are:
``EXTERNAL_TABLE`` with the Parquet SerDe (or, in staging, the RegexSerDe / OpenCSVSerde / JSON
SerDe of the raw file), ``s3://`` locations ending in ``/``, partition keys apart from the columns,
one Glue partition per partition folder, and the crawler's statistics as the usual parameters
(``classification``, ``recordCount``, ``sizeKey``, ``objectCount``). The endpoint is configurable
(``MOVIELAKE_GLUE_ENDPOINT``), so tests run against moto's server; credentials come from the AWS
default chain.
"""

from __future__ import annotations

from movielake_dagster.aws import GLUE, aws_errors, client_config, is_not_found
from movielake_dagster.catalog.backend import Catalog
from movielake_dagster.catalog.model import (
    CatalogColumn,
    CatalogPartition,
    CatalogTable,
    StorageFormat,
)

OURS = "movielake."
STORAGE_TABLE_PARAMETERS = ("skip.header.line.count",)


class GlueCatalog(Catalog):
    def __init__(self, endpoint_url: str = "", region: str = "us-east-1", client=None):
        self.endpoint_url = endpoint_url or None
        self.region = region
        self._client = client

    def describe(self) -> str:
        return f"AWS Glue Data Catalog ({self.endpoint_url or self.region})"

    @property
    def glue(self):
        if self._client is None:
            import boto3  # only a Glue catalog pays for loading it

            self._client = boto3.client(
                "glue", endpoint_url=self.endpoint_url, region_name=self.region, config=client_config()
            )
        return self._client

    # -- databases -----------------------------------------------------------------------------
    def ensure_database(self, name: str, description: str) -> None:
        with aws_errors(GLUE, self.endpoint_url):
            try:
                current = self.glue.get_database(Name=name)["Database"]
                if current.get("Description") != description:  # keep its parameters (the crawl bookmarks)
                    self.glue.update_database(
                        Name=name,
                        DatabaseInput={
                            "Name": name,
                            "Description": description,
                            "Parameters": current.get("Parameters", {}),
                        },
                    )
            except Exception as error:  # not found is expected; aws_errors classifies the rest
                if not is_not_found(error):
                    raise
                self.glue.create_database(DatabaseInput={"Name": name, "Description": description})

    def list_databases(self) -> list[str]:
        with aws_errors(GLUE, self.endpoint_url):
            names = []
            for page in self.glue.get_paginator("get_databases").paginate():
                names.extend(d["Name"] for d in page["DatabaseList"])
            return sorted(names)

    def get_bookmarks(self, database: str) -> dict[str, dict]:
        """Kept in the database's parameters (``movielake.crawl.<table>``), not in the Iceberg tables
        (which Iceberg's own Glue catalog owns)."""
        import json

        with aws_errors(GLUE, self.endpoint_url):
            try:
                parameters = self.glue.get_database(Name=database)["Database"].get("Parameters", {})
            except Exception as error:  # not found is expected; aws_errors classifies the rest
                if is_not_found(error):
                    return {}
                raise
        prefix = f"{OURS}crawl."
        return {k[len(prefix) :]: json.loads(v) for k, v in parameters.items() if k.startswith(prefix)}

    def put_bookmarks(self, database: str, bookmarks: dict[str, dict]) -> None:
        import json

        with aws_errors(GLUE, self.endpoint_url):
            current = self.glue.get_database(Name=database)["Database"]
            parameters = {k: v for k, v in current.get("Parameters", {}).items() if not k.startswith(f"{OURS}crawl.")}
            parameters.update(
                {f"{OURS}crawl.{name}": json.dumps(body, sort_keys=True) for name, body in bookmarks.items()}
            )
            database_input = {"Name": database, "Parameters": parameters}
            if current.get("Description"):
                database_input["Description"] = current["Description"]
            self.glue.update_database(Name=database, DatabaseInput=database_input)

    # -- tables --------------------------------------------------------------------------------
    def list_tables(self, database: str) -> list[CatalogTable]:
        with aws_errors(GLUE, self.endpoint_url):
            try:
                raw_tables = []
                for page in self.glue.get_paginator("get_tables").paginate(DatabaseName=database):
                    raw_tables.extend(page["TableList"])
            except Exception as error:  # not found is expected; aws_errors classifies the rest
                if is_not_found(error):
                    return []
                raise
            return sorted((self._from_glue(database, t) for t in raw_tables), key=lambda t: t.name)

    def get_table(self, database: str, name: str) -> CatalogTable | None:
        with aws_errors(GLUE, self.endpoint_url):
            try:
                raw = self.glue.get_table(DatabaseName=database, Name=name)["Table"]
            except Exception as error:  # not found is expected; aws_errors classifies the rest
                if is_not_found(error):
                    return None
                raise
            return self._from_glue(database, raw)

    def put_table(self, table: CatalogTable, partitions_changed: bool = True) -> None:
        table_input = self._to_glue(table)
        with aws_errors(GLUE, self.endpoint_url):
            try:
                current = self.glue.get_table(DatabaseName=table.database, Name=table.name)["Table"]
                columns = current.get("StorageDescriptor", {}).get("Columns")
                same_schema = (
                    columns == table_input["StorageDescriptor"]["Columns"]
                    and current.get("PartitionKeys", []) == table_input["PartitionKeys"]
                )
                # Glue keeps a version of the table per update; keep one only when the schema changed.
                self.glue.update_table(DatabaseName=table.database, TableInput=table_input, SkipArchive=same_schema)
            except Exception as error:  # not found is expected; aws_errors classifies the rest
                if not is_not_found(error):
                    raise
                self.glue.create_table(DatabaseName=table.database, TableInput=table_input)
            if partitions_changed:
                self._sync_partitions(table, table_input["StorageDescriptor"])

    def delete_table(self, database: str, name: str) -> None:
        with aws_errors(GLUE, self.endpoint_url):
            self.glue.delete_table(DatabaseName=database, Name=name)

    # -- partitions ----------------------------------------------------------------------------
    def _partitions(self, database: str, name: str) -> list[dict]:
        partitions = []
        for page in self.glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=name):
            partitions.extend(page["Partitions"])
        return partitions

    def _sync_partitions(self, table: CatalogTable, descriptor: dict) -> None:
        existing = {tuple(p["Values"]): p for p in self._partitions(table.database, table.name)}
        wanted = {p.values: self._partition_input(p, descriptor) for p in table.partitions}
        stale = [{"Values": list(v)} for v in existing if v not in wanted]
        for start in range(0, len(stale), 25):
            self.glue.batch_delete_partition(
                DatabaseName=table.database, TableName=table.name, PartitionsToDelete=stale[start : start + 25]
            )
        new = [p for v, p in wanted.items() if v not in existing]
        for start in range(0, len(new), 100):
            self.glue.batch_create_partition(
                DatabaseName=table.database, TableName=table.name, PartitionInputList=new[start : start + 100]
            )
        for values, partition_input in wanted.items():
            old = existing.get(values)
            if old is not None and (
                old.get("Parameters") != partition_input["Parameters"]
                or old["StorageDescriptor"].get("Location") != partition_input["StorageDescriptor"]["Location"]
            ):
                self.glue.update_partition(
                    DatabaseName=table.database,
                    TableName=table.name,
                    PartitionValueList=list(values),
                    PartitionInput=partition_input,
                )

    @staticmethod
    def _partition_input(partition: CatalogPartition, descriptor: dict) -> dict:
        return {
            "Values": list(partition.values),
            "StorageDescriptor": {**descriptor, "Location": partition.location},
            "Parameters": {
                "recordCount": str(partition.record_count),
                "sizeKey": str(partition.size_bytes),
                "objectCount": str(partition.files),
            },
        }

    # -- translation ---------------------------------------------------------------------------
    @staticmethod
    def _to_glue(table: CatalogTable) -> dict:
        def columns(cols):
            return [{"Name": c.name, "Type": c.type, "Comment": c.description[:255]} for c in cols]

        storage = table.storage
        parameters = {
            "classification": storage.classification,
            "typeOfData": "file",
            "recordCount": str(table.record_count),
            "sizeKey": str(table.size_bytes),
            "objectCount": str(table.files),
            **storage.table_parameters,
            f"{OURS}crawler": table.crawler,
            f"{OURS}fingerprint": table.fingerprint,
            f"{OURS}last_crawled": table.last_crawled,
            f"{OURS}dataset_key": table.dataset_key,
            **{f"{OURS}{k}": v for k, v in table.parameters.items()},
        }
        if storage.classification == "parquet":
            parameters["EXTERNAL"] = "TRUE"
        return {
            "Name": table.name,
            "Description": table.description[:2048],
            "TableType": "EXTERNAL_TABLE",
            "Parameters": parameters,
            "PartitionKeys": columns(table.partition_keys),
            "StorageDescriptor": {
                "Columns": columns(table.columns),
                "Location": table.location,
                "InputFormat": storage.input_format,
                "OutputFormat": storage.output_format,
                "Compressed": False,
                "SerdeInfo": {"SerializationLibrary": storage.serde, "Parameters": dict(storage.serde_parameters)},
                "StoredAsSubDirectories": False,
            },
        }

    def _from_glue(self, database: str, raw: dict) -> CatalogTable:
        parameters = raw.get("Parameters", {})
        descriptor = raw.get("StorageDescriptor", {})
        serde = descriptor.get("SerdeInfo", {})

        def columns(cols):
            return tuple(CatalogColumn(c["Name"], c["Type"], c.get("Comment", "")) for c in cols)

        partition_keys = columns(raw.get("PartitionKeys", []))
        partitions = ()
        if partition_keys:
            partitions = tuple(
                sorted(
                    (
                        CatalogPartition(
                            tuple(p["Values"]),
                            p["StorageDescriptor"].get("Location", ""),
                            int(p.get("Parameters", {}).get("recordCount", 0)),
                            int(p.get("Parameters", {}).get("sizeKey", 0)),
                            int(p.get("Parameters", {}).get("objectCount", 0)),
                        )
                        for p in self._partitions(database, raw["Name"])
                    ),
                    key=lambda p: tuple((0, int(v), "") if v.lstrip("-").isdigit() else (1, 0, v) for v in p.values),
                )
            )
        reserved = {"crawler", "fingerprint", "last_crawled", "dataset_key"}
        return CatalogTable(
            database=database,
            name=raw["Name"],
            description=raw.get("Description", ""),
            location=descriptor.get("Location", ""),
            storage=StorageFormat(
                classification=parameters.get("classification", ""),
                input_format=descriptor.get("InputFormat", ""),
                output_format=descriptor.get("OutputFormat", ""),
                serde=serde.get("SerializationLibrary", ""),
                serde_parameters=dict(serde.get("Parameters", {})),
                table_parameters={k: parameters[k] for k in STORAGE_TABLE_PARAMETERS if k in parameters},
            ),
            columns=columns(descriptor.get("Columns", [])),
            partition_keys=partition_keys,
            partitions=partitions,
            record_count=int(parameters.get("recordCount", 0)),
            size_bytes=int(parameters.get("sizeKey", 0)),
            files=int(parameters.get("objectCount", 0)),
            fingerprint=parameters.get(f"{OURS}fingerprint", ""),
            last_crawled=parameters.get(f"{OURS}last_crawled", ""),
            dataset_key=parameters.get(f"{OURS}dataset_key", ""),
            crawler=parameters.get(f"{OURS}crawler", ""),
            parameters={
                k[len(OURS) :]: v
                for k, v in parameters.items()
                if k.startswith(OURS) and k[len(OURS) :] not in reserved
            },
        )
