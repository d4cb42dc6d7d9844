"""The lake as a Dagster resource: layer locations plus the object store that reaches them."""


from functools import cached_property

import dagster as dg

from movielake_dagster.datasets import Dataset
from movielake_dagster.lake import LakeLocation, ObjectStore, spark_uri


class LakeResource(dg.ConfigurableResource):
    """Where the lake lives: a local folder (one sub-folder per layer) or one S3 bucket per layer."""

    url: str = ".movielake/lake"
    landing: str = ""
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"

    @cached_property
    def location(self) -> LakeLocation:
        return LakeLocation.parse(self.url)

    @cached_property
    def store(self) -> ObjectStore:
        return ObjectStore(self.s3_endpoint, self.s3_region)

    @property
    def is_s3(self) -> bool:
        return self.location.is_s3

    def uri(self, dataset: Dataset, name: str = "") -> str:
        """The dataset's location (a local path or s3:// URL), or of one file inside it."""
        key = f"{dataset.key}/{name}" if name else dataset.key
        return self.location.uri(dataset.layer, key)

    def hidden_sibling(self, dataset: Dataset, purpose: str, run_id: str) -> str:
        """A folder beside the dataset that no reader, crawler or query picks up (its name starts
        with a dot), for a write in progress or a step's intermediate data."""
        parent, _, name = self.uri(dataset).rstrip("/").rpartition("/")
        return f"{parent}/.{name}.__{purpose}-{run_id[:8]}"

    def landing_file(self, name: str) -> str | None:
        """The landing location's file of this name, if it is there."""
        uri = f"{self.landing.rstrip('/')}/{name}"
        return uri if self.store.exists(uri) else None

    def spark_uri(self, dataset: Dataset) -> str:
        return spark_uri(self.uri(dataset))

    def prepare(self) -> None:
        """Create missing layer buckets; fails in one line when the endpoint is unreachable."""
        if self.is_s3:
            self.store.ensure_buckets(self.location.buckets())

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self.prepare()
