"""Asset checks generated from the dataset declarations: one multi-asset check per table.

Each table gets, from ``datasets.py``: ``schema_contract``, ``not_null`` (declared NOT NULL
columns), ``primary_key_unique``, one ``<fk>_references_<parent>`` per foreign key, accepted
values for the columns that have a rule in ``rules.py`` (``rating_in_half_stars``,
``year_plausible``, ``rated_at_not_in_future``, ...), ``not_empty`` and, where the table's rows
can be accounted for, ``reconciliation``. All checks of a table run in one step that reads the
table once (see ``rules.evaluate_rows``). Key, integrity, schema and reconciliation checks are
ERROR and blocking: downstream assets do not materialize on bad data. The rest are WARN.

Lateness is not a check here: the access layer carries Dagster's freshness policy (``automation/schedules.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg
from pyspark.sql import functions as F

from movielake_dagster.catalog.iceberg import live_rows, run_branch
from movielake_dagster.checks import reconciliation as rec
from movielake_dagster.checks.rules import (
    ERROR,
    WARN,
    Outcome,
    evaluate_rows,
    evaluate_schema,
    expects_rows,
    foreign_keys,
    row_rules,
)
from movielake_dagster.datasets import ALL_DATASETS, Dataset, dataset_for_table
from movielake_dagster.io_managers.iceberg import (
    branch_snapshot,
    markdown_preview,
    publish,
    table_name,
)
from movielake_dagster.lake import spark_uri


def checked_datasets() -> list[Dataset]:
    """Every table of the cleanse and access layers (the staging layer holds raw files)."""
    return [d for d in ALL_DATASETS if d.layer in ("cleanse", "access")]


SEVERITY_NOTES = {
    ERROR: "Blocking: when it fails, downstream assets are not materialized.",
    WARN: "Warning: a failure is reported but blocks nothing.",
}


def _spec(dataset: Dataset, name: str, description: str, severity: str, deps=()) -> dg.AssetCheckSpec:
    sentence = description[:1].upper() + description[1:].rstrip(".") + "."
    return dg.AssetCheckSpec(
        name,
        asset=dataset.asset_key,
        description=f"{sentence} {SEVERITY_NOTES[severity]}",
        blocking=severity == ERROR,
        additional_deps=list(deps),
    )


def _inputs(dataset: Dataset) -> tuple[dict[str, dg.AssetIn], dict[str, list[dg.AssetKey]]]:
    """The check step's inputs, and for each check name the other assets it reads."""
    ins = {"table": dg.AssetIn(dataset.asset_key)}
    deps: dict[str, list[dg.AssetKey]] = {}
    for fk in foreign_keys(dataset):
        ins[f"parent_{fk.column}"] = dg.AssetIn(fk.parent.asset_key)
        deps[fk.check_name] = [fk.parent.asset_key]
    quarantine, staging = (
        dataset_for_table("cleanse", f"quarantine_{dataset.name}"),
        dataset_for_table("staging", dataset.name),
    )
    if dataset.layer == "cleanse" and quarantine and staging:
        ins["staged"] = dg.AssetIn(staging.asset_key)
        ins["quarantine"] = dg.AssetIn(quarantine.asset_key)
        deps["reconciliation"] = [staging.asset_key, quarantine.asset_key]
    if dataset.layer == "access" and dataset.name in rec.ACCESS_SOURCES:
        source = rec.ACCESS_SOURCES[dataset.name][0]
        ins["source"] = dg.AssetIn(source.asset_key)
        deps["reconciliation"] = [source.asset_key]
    return ins, deps


def _specs(dataset: Dataset, deps: dict[str, list[dg.AssetKey]]) -> list[dg.AssetCheckSpec]:
    specs = [_spec(dataset, "schema_contract", "columns and types as declared in datasets.py", ERROR)]
    specs += [_spec(dataset, r.name, r.description, r.severity, deps.get(r.name, ())) for r in row_rules(dataset)]
    if dataset.primary_key:
        specs.append(_spec(dataset, "primary_key_unique", f"({', '.join(dataset.primary_key)}) is unique", ERROR))
    if expects_rows(dataset):
        specs.append(_spec(dataset, "not_empty", "the table has rows", "WARN"))
    if "reconciliation" in deps:
        specs.append(
            _spec(
                dataset,
                "reconciliation",
                rec.DESCRIPTION if dataset.layer == "cleanse" else "every cleansed row is in this table, nothing more",
                ERROR,
                deps["reconciliation"],
            )
        )
    return specs


def to_result(dataset: Dataset, outcome: Outcome, seconds: float, extra: dict | None = None) -> dg.AssetCheckResult:
    metadata = {
        **(extra or {}),
        "failed_rows": outcome.failed_rows,
        "rule": dg.MetadataValue.md(f"```sql\n{outcome.rule}\n```"),
        "pass_seconds": round(seconds, 3),
    }
    if outcome.rows_checked is not None:
        metadata["rows_checked"] = outcome.rows_checked
    if outcome.sample:  # the failing rows; a passing reconciliation shows its per-file accounts
        metadata["failing_rows" if not outcome.passed else "accounts"] = dg.MetadataValue.md(
            markdown_preview(outcome.sample, outcome.sample_columns)
        )
    for key, value in outcome.extra.items():
        metadata[key] = dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value
    return dg.AssetCheckResult(
        asset_key=dataset.asset_key,
        check_name=outcome.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if outcome.severity == ERROR else dg.AssetCheckSeverity.WARN,
        description=outcome.description,
        metadata=metadata,
    )


@dataclass(frozen=True)
class DeltaScope:
    """What a run that wrote row changes to a table audits: the rows it inserted (its append), the
    table's rows with their keys (for uniqueness), and the table's row count from Iceberg's metadata."""

    inserted: object
    key_scope: object
    rows: int
    batch_files: tuple[str, ...]


def delta_scope(context, dataset: Dataset, table) -> DeltaScope | None:
    """The scope of the day's checks when this run wrote ``dataset`` as row changes; None otherwise
    (the whole table was written, or it was not written by this run: check everything)."""
    if context is None:
        return None
    event = context.instance.get_latest_materialization_event(dataset.asset_key)
    if event is None or event.run_id != context.op_execution_context.run_id or event.asset_materialization is None:
        return None
    metadata = event.asset_materialization.metadata
    if metadata.get("movielake/write") is None or metadata["movielake/write"].value != "row changes":
        return None
    iceberg = context.resources.spark.catalog.iceberg()
    pyiceberg_table = iceberg.table(dataset.layer, dataset.name)
    head = pyiceberg_table.snapshot_by_id(int(metadata["movielake/snapshot_id"].value))
    session = table.sparkSession
    if head.summary is not None and head.summary.operation.value == "append" and head.parent_snapshot_id:
        inserted = (
            session.read.format("iceberg")
            .option("start-snapshot-id", str(head.parent_snapshot_id))
            .option("end-snapshot-id", str(head.snapshot_id))
            .load(table_name(dataset))
        )
    else:
        inserted = session.createDataFrame([], dataset.spark_ddl())
    keys = list(dataset.primary_key)
    key_scope = table.join(F.broadcast(inserted.select(*keys).distinct()), keys, "left_semi") if keys else None
    batch = metadata.get("movielake/batch_files")
    return DeltaScope(
        inserted.select(*dataset.column_names),
        key_scope,
        live_rows(head.summary),
        tuple(batch.value) if batch is not None else (),
    )


def evaluate_dataset(context, dataset: Dataset, inputs: dict) -> list[tuple[Outcome, float]]:
    """Every check of ``dataset`` from its loaded inputs: (outcome, seconds of the pass it needed).

    After a day's row changes (``delta_scope``) the row rules check the rows the day inserted, key
    uniqueness the table's rows with those keys, and the counts come from Iceberg's metadata; after
    a full write (and in the ``check_lake`` job) every rule checks every row.
    """
    table = inputs["table"]
    started = time.perf_counter()
    schema = evaluate_schema(table, dataset)
    parents = {fk.column: inputs[f"parent_{fk.column}"] for fk in foreign_keys(dataset)}
    scope = delta_scope(context, dataset, table)
    if scope is None:
        rows_stored, outcomes = evaluate_rows(table, dataset, parents)
    else:
        _, outcomes = evaluate_rows(scope.inserted, dataset, parents, key_scope=scope.key_scope)
        rows_stored = scope.rows
        for outcome in outcomes:
            outcome.extra["scope"] = "the rows this run inserted (keys: against the whole table)"
            if outcome.name == "not_empty":
                outcome.passed, outcome.failed_rows = rows_stored > 0, 0 if rows_stored else 1
    row_seconds = time.perf_counter() - started
    results = [(schema, 0.0)] + [(o, row_seconds) for o in outcomes]
    started = time.perf_counter()
    if "staged" in inputs and scope is not None:
        reported = rec.latest_report(context.instance, dataset)
        outcome = rec.reconcile_batch(
            dataset,
            table.sparkSession,
            inputs["staged"],
            scope.batch_files,
            rows_stored,
            inputs["quarantine"],
            reported,
        )
        results.append((outcome, time.perf_counter() - started))
    elif "source" in inputs and scope is not None:
        results.append(
            (
                rec.reconcile_counts(dataset, rows_stored, context.resources.spark.catalog.iceberg()),
                time.perf_counter() - started,
            )
        )
    elif "staged" in inputs:
        staged = inputs["staged"]
        counts = rec.staged_records(table.sparkSession, [spark_uri(u) for u in staged.uris], dataset.name)
        reported = rec.latest_report(context.instance, dataset) if context is not None else None
        outcome = rec.reconcile_cleanse(
            dataset, counts, rows_stored, rec.quarantined_by_file(inputs["quarantine"]), reported
        )
        results.append((outcome, time.perf_counter() - started))
    elif "source" in inputs:
        results.append((rec.reconcile_access(dataset, rows_stored, inputs["source"]), time.perf_counter() - started))
    return results


def build_dataset_checks(dataset: Dataset) -> dg.AssetChecksDefinition:
    """One multi-asset check evaluating every rule of ``dataset`` in one step."""
    ins, deps = _inputs(dataset)

    @dg.multi_asset_check(
        name=f"{dataset.layer}_{dataset.name}_checks",
        specs=_specs(dataset, deps),
        ins=ins,
        description=f"Quality checks of {dataset.layer}.{dataset.name}, derived from its declaration. They read "
        "the table as this run wrote it (its branch) and, when every blocking one passes, publish it.",
        compute_kind="spark",
        required_resource_keys={"spark"},
    )
    def _checks(context, **inputs):
        results = evaluate_dataset(context, dataset, inputs)
        blocked_by = [o.name for o, _ in results if not o.passed and o.severity == ERROR]
        for outcome, _ in results:
            if not outcome.passed:
                context.log.warning(
                    f"{dataset.asset_key.to_user_string()}:{outcome.name} failed "
                    f"({outcome.severity}): {outcome.failed_rows} failing"
                )
        publication = publish_audited(context, dataset, blocked_by)
        for outcome, seconds in results:
            yield to_result(dataset, outcome, seconds, publication)

    return _checks


def publish_audited(context, dataset: Dataset, blocked_by: list[str]) -> dict:
    """Write-audit-publish: the run's branch of the table becomes ``main`` when no blocking check
    failed; otherwise ``main`` stays as it was and the branch keeps the rejected snapshot.
    Returns what was done, as metadata for every check result of the step."""
    spark = context.resources.spark
    iceberg = spark.catalog.iceberg()
    branch = run_branch(context.op_execution_context.run_id)
    head = branch_snapshot(iceberg, dataset, branch)
    if head is None:  # the run checked the table without writing it (check_lake)
        return {"movielake/published": "not applicable: this run wrote no snapshot of the table"}
    metadata = {"movielake/branch": branch, "movielake/snapshot_id": str(head)}
    if blocked_by:
        context.log.error(
            f"{table_name(dataset)}: not published; blocking check(s) {', '.join(blocked_by)} "
            f"failed. main is unchanged; the rejected rows are on branch {branch} "
            f"(`movielake query --branch {branch} ...`)"
        )
        metadata["movielake/published"] = f"no: blocked by {', '.join(blocked_by)}; main unchanged"
        return metadata
    publish(spark.get_session(), iceberg, dataset, branch)
    context.log.info(f"{table_name(dataset)}: published snapshot {head} (main fast-forwarded to {branch})")
    metadata["movielake/published"] = "yes: main fast-forwarded to the branch"
    return metadata
