"""AWS clients and their errors, in one place for S3 (the lake's files) and Glue (the catalog).

``error_code`` reads the service's error code from a botocore ``ClientError``; ``aws_errors`` turns
the connection and credential failures of either service into one-line :class:`EndpointError`s that
name the setting to fix; ``client_config`` is the botocore configuration every client uses (short
connect timeout, so an unreachable endpoint fails in seconds, and botocore's standard retry mode).
"""

from __future__ import annotations

from dataclasses import dataclass

from movielake_dagster.errors import EndpointError

MAX_ATTEMPTS = 3
# What AWS (and moto) answer when credentials are missing, wrong or not allowed, across S3 and Glue.
AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "AccessDenied",
        "AccessDeniedException",
        "403",
        "ExpiredToken",
        "InvalidToken",
        "UnrecognizedClientException",
        "InvalidSignatureException",
    }
)
NOT_FOUND_CODES = frozenset({"404", "NoSuchBucket", "NoSuchKey", "NotFound", "EntityNotFoundException"})


@dataclass(frozen=True)
class Service:
    """What a user is told to fix when a service cannot be used."""

    name: str  # as users know it: "S3", "Glue"
    unreachable_fix: str
    refused_fix: str


S3 = Service(
    "S3",
    "start the S3 server or fix MOVIELAKE_S3_ENDPOINT (empty means AWS) and check the network",
    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the bucket policy",
)
GLUE = Service(
    "Glue",
    "fix MOVIELAKE_GLUE_ENDPOINT (empty means AWS) or use MOVIELAKE_CATALOG=local",
    "grant glue:*Database*, glue:*Table*, glue:*Partition* to these credentials",
)


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (``NoSuchKey``, ``404``, ...); ``""`` for others."""
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def is_not_found(error: BaseException) -> bool:
    return error_code(error) in NOT_FOUND_CODES


def client_config():
    """The botocore configuration of every AWS client of the lake."""
    from botocore.config import (
        Config,  # botocore loads in a second; only code that talks to AWS pays it
    )

    return Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"})


class aws_errors:
    """A context in which botocore's connection and credential errors become :class:`EndpointError`s.

    ``resource`` names what was being reached (a bucket) in the message. Other errors pass unchanged.
    """

    def __init__(self, service: Service, endpoint_url: str | None, resource: str = ""):
        self.service = service
        self.endpoint = endpoint_url or f"AWS {service.name}"
        self.resource = resource

    def __enter__(self):
        return self

    def __exit__(self, exc_type, error, tb):
        if error is None or isinstance(error, EndpointError):
            return False
        from botocore.exceptions import (
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        if isinstance(error, EndpointConnectionError) or "Could not connect" in str(error):
            raise EndpointError(
                f"cannot reach the {self.service.name} endpoint {self.endpoint}", self.service.unreachable_fix
            ) from error
        if isinstance(error, NoCredentialsError):
            raise EndpointError(
                f"no AWS credentials found for {self.endpoint}",
                "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role",
            ) from error
        if isinstance(error, ClientError) and error_code(error) in AUTH_CODES:
            what = f" for {self.resource!r}" if self.resource else ""
            raise EndpointError(
                f"{self.endpoint} refused the credentials{what} ({error_code(error)})", self.service.refused_fix
            ) from error
        return False
