"""Staging: raw files copied byte for byte from the landing location into the staging layer."""

from dataclasses import dataclass
from pathlib import PurePosixPath

import dagster as dg

from movielake_dagster.datasets import dataset_for
from movielake_dagster.resources.lake import LakeResource


@dataclass(frozen=True)
class StagedFiles:
    """A dataset's raw files: ``uris`` are where the bytes are, ``names`` their names in staging."""

    uris: tuple[str, ...]
    names: tuple[str, ...]

    def named(self, name: str) -> str | None:
        """The URI of the file with this name, if present."""
        for uri, file_name in zip(self.uris, self.names):
            if file_name == name:
                return uri
        return None


class RawFilesIOManager(dg.ConfigurableIOManager):
    """Copies landed files into ``staging/<dataset>/`` unchanged and hands their staging URIs on.

    The staging folder ends up holding exactly the files of the latest materialization: files
    that are no longer in the landing location are removed after the new ones are in place.
    """

    lake: LakeResource

    def handle_output(self, context: dg.OutputContext, obj: StagedFiles) -> None:
        dataset = dataset_for(context.asset_key)
        store = self.lake.store
        staged = []
        for source, name in zip(obj.uris, obj.names):
            target = self.lake.uri(dataset, name)
            store.copy(source, target)
            staged.append(target)
        sizes = {}
        for stored in store.list_files(self.lake.uri(dataset)):  # one listing: drop stale files, size the rest
            if stored.uri in staged:
                sizes[stored.uri] = stored.size
            else:
                store.delete_file(stored.uri)
        context.add_output_metadata(
            {
                "dagster/uri": dg.MetadataValue.path(self.lake.uri(dataset)),
                "files": dg.MetadataValue.json({name: sizes.get(uri, 0) for name, uri in zip(obj.names, staged)}),
                "bytes": sum(sizes.get(uri, 0) for uri in staged),
                "sha256": dg.MetadataValue.json({name: store.sha256(uri) for name, uri in zip(obj.names, staged)}),
            }
        )

    def load_input(self, context: dg.InputContext) -> StagedFiles:
        dataset = dataset_for(context.upstream_output.asset_key)
        files = list(self.lake.store.list_files(self.lake.uri(dataset)))
        return StagedFiles(tuple(f.uri for f in files), tuple(PurePosixPath(f.uri).name for f in files))
