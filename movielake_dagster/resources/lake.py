"""The lake as a Dagster resource: layer locations plus the object store that reaches them."""

import time
from functools import cached_property

import dagster as dg
from dagster_aws.s3 import S3Resource

from movielake_dagster.aws import MAX_ATTEMPTS
from movielake_dagster.datasets import Dataset
from movielake_dagster.lake import LakeLocation, ObjectStore, spark_uri

STALE_AFTER_SECONDS = 24 * 3600  # a scratch folder untouched this long belongs to a dead run
SCRATCH = "_scratch"


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
        s3 = S3Resource(endpoint_url=self.s3_endpoint or None, region_name=self.s3_region, max_attempts=MAX_ATTEMPTS)
        return ObjectStore(self.s3_endpoint, self.s3_region, client_factory=s3.get_client)

    @property
    def is_s3(self) -> bool:
        return self.location.is_s3

    def uri(self, dataset: Dataset, name: str = "") -> str:
        """The dataset's location (a local path or s3:// URL), or of one file inside it."""
        key = f"{dataset.key}/{name}" if name else dataset.key
        return self.location.uri(dataset.layer, key)

    def scratch(self, purpose: str, run_id: str) -> str:
        """A folder for a step's intermediate data (never a table): ``<cleanse>/_scratch/<purpose>-<run>``.
        Readers, the crawler and Athena ignore ``_``-prefixed folders; the step deletes it when it ends."""
        return self.location.uri("cleanse", f"{SCRATCH}/{purpose}-{run_id[:8]}")

    def sweep_scratch(self, older_than_seconds: float = STALE_AFTER_SECONDS) -> list[str]:
        """Delete the scratch folders of runs that were killed before they could (untouched for
        ``older_than_seconds``; a live run's folder is younger). Returns the folders deleted."""
        root = self.location.uri("cleanse", SCRATCH)
        newest: dict[str, float] = {}
        for info in self.store.list_files(root):
            folder = f"{root}/{info.uri[len(root) + 1 :].split('/')[0]}"
            newest[folder] = max(newest.get(folder, 0.0), info.modified)
        cutoff = time.time() - older_than_seconds
        stale = sorted(folder for folder, modified in newest.items() if modified < cutoff)
        for folder in stale:
            self.store.delete_tree(folder)
        return stale

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
