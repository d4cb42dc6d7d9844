"""docs/data_dictionary.md is generated: it must be what the generator writes today, and complete."""

from __future__ import annotations

from movielake_dagster.catalog.formats import RAW_LAYOUTS
from movielake_dagster.datasets import DECLARED_DATASETS
from movielake_dagster.tools.cli import main
from movielake_dagster.tools.dictionary import (
    DICTIONARY_PATH,
    STAGING_FILES,
    render_dictionary,
)


def test_the_committed_data_dictionary_is_up_to_date():
    assert DICTIONARY_PATH.exists(), "docs/data_dictionary.md is missing: run `movielake dictionary`"
    assert DICTIONARY_PATH.read_text(encoding="utf-8") == render_dictionary(), (
        "docs/data_dictionary.md is stale (a dataset, column or description changed in code): "
        "run `movielake dictionary` and commit the result"
    )


def test_every_table_and_column_is_in_the_dictionary_with_type_description_and_origin():
    text = render_dictionary()
    for dataset in DECLARED_DATASETS:
        assert f"### `{dataset.layer}.{dataset.name}`" in text
        for column in dataset.columns:
            rows = [line for line in text.splitlines() if line.startswith(f"| `{column.name}` | {column.type} |")]
            assert any(column.description.replace("|", "\\|") in row for row in rows), (dataset.name, column.name)
    for layout in RAW_LAYOUTS:
        if any(layout.file_name in files for files in STAGING_FILES.values()):
            assert f"#### `{layout.file_name}`" in text
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            assert all(cells), f"empty cell in {line!r}"


def test_the_dictionary_command_checks_and_writes(tmp_path, capsys):
    assert main(["dictionary", "--check"]) == 0
    target = tmp_path / "dictionary.md"
    assert main(["dictionary", "--check", "--output", str(target)]) == 1
    assert "stale" in capsys.readouterr().err
    assert main(["dictionary", "--output", str(target)]) == 0
    assert target.read_text(encoding="utf-8") == render_dictionary()
