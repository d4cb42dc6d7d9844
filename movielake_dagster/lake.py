"""Where each layer lives, and the few file operations the lake needs outside Spark.

A lake is either a local folder with one sub-folder per layer, or one S3 bucket per layer. Keys
inside a layer are the same in both (``movies/movies.dat``, ``ratings-data-mart/fct-rating/``),
so the code never branches on where the lake is except here.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from movielake_dagster.aws import S3, aws_errors, client_config, is_not_found
from movielake_dagster.errors import ConfigurationError

LAYERS = ("staging", "cleanse", "access")
SEED_BUCKETS: Mapping[str, str] = {
    "staging": "data-lake-staging",
    "cleanse": "data-lake-cleanse",
    "access": "data-lake-access-layer",
}


@dataclass(frozen=True)
class LakeLocation:
    """The root of each layer: ``/abs/folder/<layer>`` locally, or ``s3://<bucket>`` on S3."""

    roots: Mapping[str, str]

    @classmethod
    def parse(cls, url: str) -> LakeLocation:
        """``./folder`` or ``file:///folder``; ``s3://`` (seed bucket names); ``s3://name-{layer}``."""
        if not url:
            raise ConfigurationError("the lake location is empty", "set MOVIELAKE_LAKE to a folder or s3:// URL")
        if url.startswith(("s3://", "s3a://")):
            template = url.split("://", 1)[1].strip("/")
            if not template:
                return cls({layer: f"s3://{bucket}" for layer, bucket in SEED_BUCKETS.items()})
            if "{layer}" not in template:
                raise ConfigurationError(
                    f"MOVIELAKE_LAKE={url!r} names one bucket but the lake needs one per layer",
                    "use s3:// for the seed's bucket names or a template such as s3://acme-lake-{layer}",
                )
            return cls({layer: f"s3://{template.format(layer=layer)}" for layer in LAYERS})
        if "://" in url and not url.startswith("file://"):
            raise ConfigurationError(
                f"MOVIELAKE_LAKE={url!r} has an unsupported scheme", "use a local folder or an s3:// URL"
            )
        root = Path(url.removeprefix("file://")).expanduser().resolve()
        return cls({layer: str(root / layer) for layer in LAYERS})

    @property
    def is_s3(self) -> bool:
        return self.roots["staging"].startswith("s3://")

    def uri(self, layer: str, key: str = "") -> str:
        """The location of ``key`` in ``layer``: a local path or an ``s3://`` URL."""
        root = self.roots[layer]
        return f"{root}/{key}".rstrip("/") if key else root

    def buckets(self) -> list[str]:
        return [urlparse(root).netloc for root in self.roots.values()] if self.is_s3 else []


def store_uri(spark_location: str) -> str:
    """A location as Spark names it (``s3a://``, ``file:``) as the object store names it (``s3://``, a path)."""
    if spark_location.startswith("s3a://"):
        return "s3://" + spark_location[len("s3a://") :]
    if spark_location.startswith("file:"):
        from urllib.parse import unquote

        return unquote(urlparse(spark_location).path)
    return spark_location


def spark_uri(uri: str) -> str:
    """The same location as Spark's Hadoop file systems name it (``s3a://`` or ``file:``)."""
    if uri.startswith("s3://"):
        return "s3a://" + uri[len("s3://") :]
    if uri.startswith("s3a://"):
        return uri
    return Path(uri).resolve().as_uri()


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


@dataclass(frozen=True)
class FileInfo:
    uri: str
    size: int
    etag: str  # content fingerprint: the S3 ETag, or size+mtime locally
    modified: float = 0.0  # last modification, seconds since the epoch (S3: LastModified)


class ObjectStore:
    """Copy, list and delete files at local paths or ``s3://`` URLs (boto3 for S3).

    The S3 client is made on first use, so that loading the Dagster definitions never opens a
    connection: by ``client_factory`` when given (the code location passes dagster-aws's
    ``S3Resource.get_client``), else by boto3 with the lake's ``client_config``.
    """

    def __init__(
        self, endpoint_url: str = "", region: str = "us-east-1", client_factory: Callable[[], Any] | None = None
    ):
        self.endpoint_url = endpoint_url or None
        self.region = region
        self._client_factory = client_factory
        self._client = None

    def errors(self, bucket: str = "") -> aws_errors:
        """The context in which this store's S3 calls fail as one-line errors naming ``bucket``."""
        return aws_errors(S3, self.endpoint_url, f"bucket {bucket}" if bucket else "")

    @property
    def s3(self):
        if self._client is None:
            if self._client_factory is not None:
                self._client = self._client_factory()
            else:
                import boto3  # only code that talks to S3 pays for loading it

                self._client = boto3.client(
                    "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=client_config()
                )
        return self._client

    # -- checks -------------------------------------------------------------------------------
    def ensure_buckets(self, buckets: list[str]) -> None:
        """Create the layer buckets that do not exist yet; fail in one line when S3 is unreachable."""
        for bucket in buckets:
            with self.errors(bucket):
                try:
                    self.s3.head_bucket(Bucket=bucket)
                    continue
                except Exception as error:  # not found is expected; aws_errors classifies the rest
                    if not is_not_found(error):
                        raise
                kwargs = {}
                if self.region != "us-east-1":
                    kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
                self.s3.create_bucket(Bucket=bucket, **kwargs)

    # -- files ----------------------------------------------------------------------------------
    def list_files(self, prefix_uri: str) -> Iterator[FileInfo]:
        """Every file under a folder or S3 prefix, recursively, in key order."""
        if prefix_uri.startswith("s3://"):
            bucket, prefix = _split_s3(prefix_uri)
            yield from self._list_s3(bucket, prefix.rstrip("/") + "/" if prefix else "")
            return
        root = Path(prefix_uri)
        if not root.exists():
            return
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            yield _local_info(path)

    def _list_s3(self, bucket: str, key_prefix: str) -> Iterator[FileInfo]:
        with self.errors(bucket):
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key_prefix):
                for obj in page.get("Contents", []):
                    yield FileInfo(
                        f"s3://{bucket}/{obj['Key']}",
                        obj["Size"],
                        obj["ETag"].strip('"'),
                        obj["LastModified"].timestamp(),
                    )

    def exists(self, uri: str) -> bool:
        if uri.startswith("s3://"):
            bucket, key = _split_s3(uri)
            with self.errors(bucket):
                try:
                    self.s3.head_object(Bucket=bucket, Key=key)
                    return True
                except Exception as error:  # not found is expected; aws_errors classifies the rest
                    if is_not_found(error):
                        return False
                    raise
        return Path(uri).is_file()

    def copy(self, src: str, dst: str) -> None:
        """Copy one file byte for byte; the destination appears whole or not at all."""
        if dst.startswith("s3://"):
            bucket, key = _split_s3(dst)
            with self.errors(bucket):
                if src.startswith("s3://"):
                    src_bucket, src_key = _split_s3(src)
                    self.s3.copy({"Bucket": src_bucket, "Key": src_key}, bucket, key)
                else:
                    self.s3.upload_file(src, bucket, key)  # S3 PUTs are atomic per object
            return
        target = Path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        if src.startswith("s3://"):
            bucket, key = _split_s3(src)
            with self.errors(bucket):
                self.s3.download_file(bucket, key, str(partial))
        else:
            shutil.copyfile(src, partial)
        partial.replace(target)  # atomic rename: readers never see half a file

    def chunks(self, uri: str, size: int = 1 << 20) -> Iterator[bytes]:
        """A file's bytes, streamed in pieces of ``size`` (local path or ``s3://`` URL)."""
        if uri.startswith("s3://"):
            bucket, key = _split_s3(uri)
            with self.errors(bucket):
                body = self.s3.get_object(Bucket=bucket, Key=key)["Body"]
                yield from iter(lambda: body.read(size), b"")
            return
        with open(uri, "rb") as handle:
            yield from iter(lambda: handle.read(size), b"")

    def sha256(self, uri: str) -> str:
        digest = hashlib.sha256()
        for chunk in self.chunks(uri):
            digest.update(chunk)
        return digest.hexdigest()

    def lines_at(self, uri: str, numbers: set[int]) -> dict[int, bytes]:
        """The lines of a text file with these 1-based numbers (without their line break), in one
        streaming pass that only counts line breaks until a wanted line comes by: a few lines of a
        10M-line file cost a read of its bytes, not a parse."""
        wanted, found = sorted(numbers), {}
        line, pending, index = 1, b"", 0
        for chunk in self.chunks(uri):
            block = pending + chunk
            cut = block.rfind(b"\n") + 1
            complete, pending = block[:cut], block[cut:]
            count = complete.count(b"\n")
            if index < len(wanted) and wanted[index] < line + count:
                parts = complete.split(b"\n")
                while index < len(wanted) and wanted[index] < line + count:
                    found[wanted[index]] = parts[wanted[index] - line].rstrip(b"\r")
                    index += 1
            line += count
        if pending and index < len(wanted) and wanted[index] == line:
            found[line] = pending.rstrip(b"\r")
        return found

    def delete_file(self, uri: str) -> None:
        if uri.startswith("s3://"):
            bucket, key = _split_s3(uri)
            with self.errors(bucket):
                self.s3.delete_object(Bucket=bucket, Key=key)
            return
        Path(uri).unlink(missing_ok=True)

    def delete_tree(self, uri: str) -> None:
        if uri.startswith("s3://"):
            bucket, _prefix = _split_s3(uri)
            keys = [{"Key": _split_s3(f.uri)[1]} for f in self.list_files(uri)]
            with self.errors(bucket):
                for start in range(0, len(keys), 1000):
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000]})
            return
        shutil.rmtree(uri, ignore_errors=True)


def _local_info(path: Path) -> FileInfo:
    stat = path.stat()
    return FileInfo(str(path), stat.st_size, f"{stat.st_size}-{stat.st_mtime_ns}", stat.st_mtime)
