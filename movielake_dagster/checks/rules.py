"""The quality rules of a dataset, derived from its declaration in ``datasets.py``, and their evaluation.

Every row rule is a SQL predicate that is TRUE for a failing row; the predicate shown in a
check's metadata is exactly the one Spark ran. All row rules of one table (not-null, ranges,
foreign keys) are counted in a single aggregation, key uniqueness in one more over the key
columns. Failing rows are fetched only for rules that failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from movielake_dagster.datasets import ALL_DATASETS, Dataset
from movielake_dagster.transforms.keys import grouping_columns
from movielake_dagster.transforms.movies import MIN_YEAR

ERROR = "ERROR"
WARN = "WARN"
SAMPLE_ROWS = 5
QUARANTINE_REASONS = (
    "malformed",
    "bad_type",
    "out_of_range",
    "null_key",
    "duplicate",
    "conflicting_duplicate",
    "unknown_user",
    "unknown_movie",
    "encoding",
)


def max_plausible_year() -> int:
    """The same bound the movie cleansing applies: up to five years ahead (announced films)."""
    return datetime.now(UTC).year + 5


def _q(column: str) -> str:
    return f"`{column}`"


@dataclass(frozen=True)
class RowRule:
    """A check counted row by row: ``failing`` is a SQL predicate, TRUE for a failing row."""

    name: str
    description: str
    failing: str
    severity: str
    show: tuple[str, ...] = ()  # columns to show for failing rows; all of the table's when empty
    per_column: dict[str, str] = field(default_factory=dict)  # extra counts reported (not judged)

    @property
    def blocking(self) -> bool:
        return self.severity == ERROR


@dataclass(frozen=True)
class ForeignKey:
    column: str
    parent: Dataset
    parent_column: str

    @property
    def check_name(self) -> str:
        return f"{self.column}_references_{self.parent.name}"

    @property
    def found_flag(self) -> str:
        return f"_found_{self.column}"


def foreign_keys(dataset: Dataset) -> list[ForeignKey]:
    """The declared foreign keys, each resolved to the parent dataset of the same layer."""
    keys = []
    for column, target in dataset.foreign_keys.items():
        parent_name, parent_column = target.split(".")
        parent = next(d for d in ALL_DATASETS if d.layer == dataset.layer and d.name == parent_name)
        keys.append(ForeignKey(column, parent, parent_column))
    return keys


# Accepted values and ranges, keyed by column name: every dataset with such a column gets the rule.
def _accepted_value_rules(max_year: int) -> dict[str, tuple[str, str, str]]:
    """column -> (check name, description, failing predicate on a non-NULL value)."""
    rules = {
        "rating": (
            "rating_in_half_stars",
            "rating is one of 0.5, 1.0, ..., 5.0",
            "`rating` < 0.5 OR `rating` > 5.0 OR `rating` * 2 <> floor(`rating` * 2)",
        ),
        "year": (
            "year_plausible",
            f"year is between {MIN_YEAR} and {max_year} (NULL allowed: no year in the title)",
            f"`year` < {MIN_YEAR} OR `year` > {max_year}",
        ),
        "rated_at": (
            "rated_at_not_in_future",
            "rated_at is not after the time of the check",
            "`rated_at` > current_timestamp()",
        ),
        "reason": (
            "reason_known",
            "reason is one of the documented reason codes",
            "`reason` NOT IN (" + ", ".join(f"'{r}'" for r in QUARANTINE_REASONS) + ")",
        ),
    }
    for column, (low, high) in {
        "hour_of_day": (0, 23),
        "quarter": (1, 4),
        "month": (1, 12),
        "day": (1, 31),
        "day_of_week": (1, 7),
    }.items():
        rules[column] = (
            f"{column}_in_range",
            f"{column} is between {low} and {high}",
            f"{_q(column)} < {low} OR {_q(column)} > {high}",
        )
    return rules


def row_rules(dataset: Dataset, max_year: int | None = None) -> list[RowRule]:
    """Not-null, accepted values and referential integrity of ``dataset``, from its declaration."""
    rules = []
    required = [c.name for c in dataset.columns if not c.nullable]
    if required:
        rules.append(
            RowRule(
                "not_null",
                f"declared NOT NULL columns have no NULLs: {', '.join(required)}",
                " OR ".join(f"{_q(c)} IS NULL" for c in required),
                ERROR,
                per_column={c: f"{_q(c)} IS NULL" for c in required},
            )
        )
    accepted = _accepted_value_rules(max_year or max_plausible_year())
    for column in dataset.column_names:
        if column in accepted:
            name, description, predicate = accepted[column]
            rules.append(RowRule(name, description, f"{_q(column)} IS NOT NULL AND ({predicate})", WARN))
    for fk in foreign_keys(dataset):
        rules.append(
            RowRule(
                fk.check_name,
                f"every {fk.column} exists in {fk.parent.layer}.{fk.parent.name}.{fk.parent_column}",
                f"{_q(fk.column)} IS NOT NULL AND {_q(fk.found_flag)} IS NULL",
                ERROR,
            )
        )
    return rules


def expects_rows(dataset: Dataset) -> bool:
    """An empty table is suspicious, except a quarantine (empty is the good news) and a change log
    (empty after a full build)."""
    return not dataset.key.startswith(("quarantine/", "changes/"))


def rule_sql(dataset: Dataset, rule: RowRule) -> str:
    """The rule as a SQL statement a reader can run against the lake's tables."""
    table = f"{dataset.layer}.{dataset.name}"
    for fk in foreign_keys(dataset):
        if rule.name == fk.check_name:
            return (
                f"SELECT count(*) FROM {table} t LEFT ANTI JOIN {fk.parent.layer}.{fk.parent.name} p\n"
                f"  ON t.{fk.column} = p.{fk.parent_column}\nWHERE t.{fk.column} IS NOT NULL"
            )
    return f"SELECT count(*) FROM {table} WHERE {rule.failing}"


def unique_sql(dataset: Dataset) -> str:
    keys = ", ".join(dataset.primary_key)
    return (
        f"SELECT {keys}, count(*) - 1 AS extra_rows FROM {dataset.layer}.{dataset.name}\n"
        f"WHERE {' AND '.join(f'{k} IS NOT NULL' for k in dataset.primary_key)}\n"
        f"GROUP BY {keys} HAVING count(*) > 1"
    )


@dataclass
class Outcome:
    """One evaluated check: what Dagster's ``AssetCheckResult`` is built from."""

    name: str
    passed: bool
    severity: str
    description: str
    failed_rows: int
    rule: str
    rows_checked: int | None = None
    sample_columns: list[str] = field(default_factory=list)
    sample: list[tuple] = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def with_parent_flags(df: DataFrame, dataset: Dataset, parents: dict[str, DataFrame]) -> DataFrame:
    """``df`` plus one ``_found_<fk>`` flag per foreign key (broadcast joins to the small parents)."""
    for fk in foreign_keys(dataset):
        keys = parents[fk.column].select(F.col(fk.parent_column).alias(fk.column)).distinct()
        df = df.join(F.broadcast(keys.withColumn(fk.found_flag, F.lit(True))), fk.column, "left")
    return df


def evaluate_rows(
    df: DataFrame,
    dataset: Dataset,
    parents: dict[str, DataFrame] | None = None,
    max_year: int | None = None,
    key_scope: DataFrame | None = None,
) -> tuple[int, list[Outcome]]:
    """(rows, outcomes): all row rules and key uniqueness of one table in one aggregation.

    Failing rows are fetched (a few) only for the rules that failed.

    The rule counts are one global aggregation (no shuffle). Key uniqueness is a second pass over
    the key columns only (Parquet reads just those), see :func:`repeated_keys`. ``key_scope`` is what
    the keys are unique in when ``df`` is only part of a table (a day's inserted rows: the table's
    rows with their keys); by default ``df`` itself.
    """
    rules = row_rules(dataset, max_year)
    flagged = with_parent_flags(df, dataset, parents or {})
    counts = [F.count_if(F.expr(r.failing)).alias(f"_fail_{i}") for i, r in enumerate(rules)]
    details = [(i, column, predicate) for i, r in enumerate(rules) for column, predicate in r.per_column.items()]
    counts += [F.count_if(F.expr(p)).alias(f"_col_{i}_{c}") for i, c, p in details]
    key = list(dataset.primary_key)
    totals = flagged.agg(F.count(F.lit(1)).alias("_rows"), *counts).first()
    rows = int(totals["_rows"] or 0)
    outcomes = []
    for i, rule in enumerate(rules):
        failed = int(totals[f"_fail_{i}"] or 0)
        outcome = Outcome(
            rule.name, failed == 0, rule.severity, rule.description, failed, rule_sql(dataset, rule), rows
        )
        if rule.per_column:
            outcome.extra["nulls_per_column"] = {c: int(totals[f"_col_{i}_{c}"] or 0) for j, c, _ in details if j == i}
        if failed:
            shown = list(rule.show) or dataset.column_names
            sample = flagged.where(F.expr(rule.failing)).select(*shown).limit(SAMPLE_ROWS).collect()
            outcome.sample_columns, outcome.sample = shown, [tuple(r) for r in sample]
        outcomes.append(outcome)
    if key:
        repeated = repeated_keys(df if key_scope is None else key_scope, key)
        dupes = int(repeated.agg(F.sum(F.col("extra_rows"))).first()[0] or 0)
        outcome = Outcome(
            "primary_key_unique",
            dupes == 0,
            ERROR,
            f"no two rows share the key ({', '.join(key)}); failed rows = rows beyond the first per key",
            dupes,
            unique_sql(dataset),
            rows,
        )
        if dupes:
            sample = repeated.orderBy(F.desc("extra_rows"), *key).limit(SAMPLE_ROWS).collect()
            outcome.sample_columns, outcome.sample = [*key, "extra_rows"], [tuple(r) for r in sample]
        outcomes.append(outcome)
    if expects_rows(dataset):
        outcomes.append(
            Outcome(
                "not_empty",
                rows > 0,
                WARN,
                "the table has at least one row",
                0 if rows else 1,
                f"SELECT count(*) > 0 FROM {dataset.layer}.{dataset.name}",
                rows,
            )
        )
    return rows, outcomes


def repeated_keys(df: DataFrame, key: list[str]) -> DataFrame:
    """(key..., extra_rows) for every non-NULL key held by more than one row.

    A window count over the key columns alone: Spark sorts the keys of each shuffle partition and
    counts runs. At 10M ratings this took 4.6 s where ``groupBy(key).count()`` took 13.5 s: the
    hash aggregation's map side cannot shrink nearly unique keys and only adds a hash table that
    outgrows the CPU caches (docs/performance.md). Only the few repeated keys are aggregated.
    """
    keys = df.select(*key).where(F.expr(" AND ".join(f"{_q(k)} IS NOT NULL" for k in key)))
    counted = keys.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy(*grouping_columns(keys, key))))
    return counted.where(F.col("_n") > 1).groupBy(*key).agg((F.first("_n") - 1).alias("extra_rows"))


def evaluate_schema(df: DataFrame, dataset: Dataset) -> Outcome:
    """Columns, their order and Spark SQL types as declared (nullability is the not-null rule's job)."""
    actual = dict(df.dtypes)
    declared = [(c.name, c.type) for c in dataset.columns]
    mismatches = [(name, type_, actual.get(name, "(missing)")) for name, type_ in declared if actual.get(name) != type_]
    mismatches += [(name, "(not declared)", type_) for name, type_ in df.dtypes if name not in dict(declared)]
    order_ok = [c for c, _ in df.dtypes if c in dict(declared)] == [c for c, _ in declared]
    if not mismatches and not order_ok:
        mismatches.append(("(column order)", ", ".join(c for c, _ in declared), ", ".join(df.columns)))
    return Outcome(
        "schema_contract",
        not mismatches,
        ERROR,
        "the stored columns, their order and types are exactly the ones declared in datasets.py",
        len(mismatches),
        "declared: " + dataset.spark_ddl(),
        None,
        ["column", "declared", "actual"],
        mismatches,
    )
