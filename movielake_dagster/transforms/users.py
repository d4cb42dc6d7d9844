"""Cleansing rules for user master data (JSON lines) and the MovieLens 1M ``users.dat`` enrichment."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from movielake_dagster.transforms.raw_lines import (
    DETAIL,
    REASON,
    TEXT,
    record_fields,
    reject_when,
    try_int,
)
from movielake_dagster.transforms.records import reject_repeated_keys

MASTERDATA_SCHEMA = "user_id string, firts_name string, first_name string, last_name string, _corrupt string"
# Strict JSON: Spark would otherwise accept single quotes, which the master-data contract does not.
JSON_OPTIONS = {"mode": "PERMISSIVE", "allowSingleQuotes": "false", "columnNameOfCorruptRecord": "_corrupt"}
# MovieLens 1M README: age codes and occupation codes.
AGE_GROUPS = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
OCCUPATIONS = (
    "other",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)


def _blank(column: str):
    return F.col(column).isNull() | (F.trim(F.col(column)) == "")


def classify_masterdata(lines: DataFrame) -> DataFrame:
    """JSON records -> user_id, first_name, last_name plus ``_reason``/``_detail``.

    A record is one JSON value, from JSON lines or from a JSON document (an array, pretty-printed
    or not; ``transforms/layouts.py``): its text may span lines, which ``from_json`` reads alike.

    Accepts ``firts_name`` (as the master-data system spells it) or ``first_name``. Rules, first
    failure wins: malformed (not a JSON object), null_key, bad_type; then per user_id the first
    line wins and later lines are ``duplicate`` (same names) or ``conflicting_duplicate``.
    """
    parsed = lines.select(
        "*",
        F.from_json(F.col(TEXT), MASTERDATA_SCHEMA, JSON_OPTIONS).alias("_json"),
    ).select(
        "*",
        F.trim(F.col("_json.user_id")).alias("_raw_user"),
        try_int(F.col("_json.user_id")).alias("user_id"),
        F.trim(F.coalesce(F.col("_json.firts_name"), F.col("_json.first_name"))).alias("first_name"),
        F.trim(F.col("_json.last_name")).alias("last_name"),
    )
    is_object = F.col("_json").isNotNull() & F.col("_json._corrupt").isNull()
    reason, detail = reject_when(
        [
            (~is_object, "malformed", "not a JSON object"),
            (_blank("_raw_user"), "null_key", "user_id is missing or empty"),
            (
                F.col("user_id").isNull(),
                "bad_type",
                F.concat(F.lit("user_id is not a whole number: "), F.col("_raw_user")),
            ),
        ]
    )
    checked = parsed.withColumns({REASON: reason, DETAIL: detail})
    return reject_repeated_keys(checked, ["user_id"], "user_id", F.struct("first_name", "last_name"))


def classify_ml1m_users(lines: DataFrame) -> DataFrame:
    """MovieLens 1M ``users.dat`` (``user_id::gender::age::occupation::zip``) with reasons."""
    fields, malformed = record_fields("::", 5)
    age_map = F.create_map(*[x for code, label in AGE_GROUPS.items() for x in (F.lit(code), F.lit(label))])
    occupation_list = F.array(*[F.lit(o) for o in OCCUPATIONS])
    typed = lines.select(
        "*",
        malformed.alias("_malformed"),
        F.trim(F.get(fields, 0)).alias("_raw_user"),
        try_int(F.get(fields, 0)).alias("user_id"),
        F.upper(F.trim(F.get(fields, 1))).alias("gender"),
        age_map[try_int(F.get(fields, 2))].alias("age_group"),
        F.get(occupation_list, try_int(F.get(fields, 3))).alias("occupation"),
        F.trim(F.get(fields, 4)).alias("zip"),
    )
    reason, detail = reject_when(
        [
            (F.col("_malformed"), "malformed", "expected 5 fields: user_id::gender::age::occupation::zip"),
            (_blank("_raw_user"), "null_key", "user_id is empty"),
            (
                F.col("user_id").isNull(),
                "bad_type",
                F.concat(F.lit("user_id is not a whole number: "), F.col("_raw_user")),
            ),
            (
                ~F.col("gender").isin("M", "F") | F.col("age_group").isNull() | F.col("occupation").isNull(),
                "out_of_range",
                "gender, age or occupation code not in the MovieLens 1M codebook",
            ),
        ]
    )
    checked = typed.withColumns({REASON: reason, DETAIL: detail})
    return reject_repeated_keys(checked, ["user_id"], "user_id", F.struct("gender", "age_group", "occupation", "zip"))


def merge_user_sources(masterdata: DataFrame | None, ml1m: DataFrame | None) -> DataFrame:
    """One row per user: names from master data, demographics from users.dat (either may be absent)."""
    names = ["user_id", "first_name", "last_name"]
    demographics = ["user_id", "gender", "age_group", "occupation", "zip"]
    if masterdata is None and ml1m is None:
        raise ValueError("no user source")
    if ml1m is None:
        return masterdata.select(*names, *[F.lit(None).cast("string").alias(c) for c in demographics[1:]])
    if masterdata is None:
        return ml1m.select("user_id", *[F.lit(None).cast("string").alias(c) for c in names[1:]], *demographics[1:])
    return masterdata.select(*names).join(ml1m.select(*demographics), "user_id", "full")
