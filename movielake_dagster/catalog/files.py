"""Reading just enough of the lake's files to catalog them: listings, Parquet footers, raw heads.

Listings come from the lake's :class:`~movielake_dagster.lake.ObjectStore` (local or S3 via boto3);
Parquet footers are read with pyarrow, which reaches S3 itself (endpoint and region as configured,
credentials from the AWS default chain). No JVM and no DuckDB extension is needed.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

from movielake_dagster.lake import FileInfo, ObjectStore

BLANK_LINE = re.compile(rb"(?m)^[ \t\r\f\v]*\n")


def is_hidden(relative_key: str) -> bool:
    """Spark's ``_SUCCESS``, ``.crc`` files and half-written ``.x.__writing`` folders: not data (as in Athena)."""
    return any(part.startswith((".", "_")) for part in relative_key.split("/") if part)


class LakeFiles:
    def __init__(self, store: ObjectStore):
        self.store = store

    def list(self, uri: str) -> list[FileInfo]:
        return list(self.store.list_files(uri))

    @cached_property
    def arrow_s3(self):
        from pyarrow import fs

        endpoint = self.store.endpoint_url
        kwargs: dict = {"region": self.store.region}
        if endpoint:
            parsed = urlparse(endpoint)
            kwargs["endpoint_override"] = parsed.netloc or parsed.path
            kwargs["scheme"] = parsed.scheme or "https"
        return fs.S3FileSystem(**kwargs)

    def arrow_path(self, uri: str):
        """(pyarrow filesystem, path) for a local path or an ``s3://`` URL."""
        if uri.startswith("s3://"):
            parsed = urlparse(uri)
            return self.arrow_s3, f"{parsed.netloc}/{parsed.path.lstrip('/')}".rstrip("/")
        from pyarrow import fs

        return fs.LocalFileSystem(), str(Path(uri))

    def parquet_footer(self, uri: str):
        """(Arrow schema, row count) from a Parquet file's footer, without reading its data."""
        import pyarrow.parquet as pq

        filesystem, path = self.arrow_path(uri)
        with (
            self.store.errors(urlparse(uri).netloc),
            filesystem.open_input_file(path) as handle,
        ):
            metadata = pq.ParquetFile(handle).metadata
            return metadata.schema.to_arrow_schema(), metadata.num_rows

    def head(self, uri: str, size: int = 64 * 1024) -> bytes:
        if uri.startswith("s3://"):
            parsed = urlparse(uri)
            with self.store.errors(parsed.netloc):
                response = self.store.s3.get_object(
                    Bucket=parsed.netloc, Key=parsed.path.lstrip("/"), Range=f"bytes=0-{size - 1}"
                )
                return response["Body"].read()
        with open(uri, "rb") as handle:
            return handle.read(size)

    def scan_text(self, uri: str) -> tuple[int, bool, int]:
        """(lines, whether the whole file is valid UTF-8, whitespace-only lines), streamed in 1 MiB chunks.

        A last line without a newline counts. A file that is not UTF-8 is taken as ISO-8859-1, as
        MovieLens 1M files are (the first bytes alone may not tell: they can be plain ASCII).
        """
        import codecs

        decoder = codecs.getincrementaldecoder("utf-8")()
        utf8 = True
        lines = blank = 0
        pending = b""  # the end of the previous chunk after its last newline: a line still open
        for chunk in self._chunks(uri):
            if utf8:
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError:
                    utf8 = False
            block = pending + chunk
            cut = block.rfind(b"\n") + 1
            lines += block.count(b"\n", 0, cut)
            blank += len(BLANK_LINE.findall(block, 0, cut))
            pending = block[cut:]
        if utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                utf8 = False
        if pending:
            lines += 1
            blank += int(not pending.strip())
        return lines, utf8, blank

    def read_text(self, uri: str, encoding: str) -> str:
        """The whole file decoded (for files whose records span lines: small master data and movie lists)."""
        return b"".join(self._chunks(uri)).decode(encoding, errors="replace")

    def _chunks(self, uri: str):
        if uri.startswith("s3://"):
            parsed = urlparse(uri)
            with self.store.errors(parsed.netloc):
                body = self.store.s3.get_object(Bucket=parsed.netloc, Key=parsed.path.lstrip("/"))["Body"]
                yield from iter(lambda: body.read(1 << 20), b"")
            return
        with open(uri, "rb") as handle:
            yield from iter(lambda: handle.read(1 << 20), b"")
