"""Errors that reach users as one line naming the fix, never as a stack trace from deep inside Spark."""

from __future__ import annotations

from dagster import Failure


class MovielakeError(Failure):
    """A problem the user can fix: bad configuration, a missing input, an unreachable endpoint.

    ``str(error)`` is a single line: what is wrong, then what to do about it. Raised inside a step,
    it is a Dagster ``Failure`` that the retry policy does not retry (a retry cannot fix it), except
    where ``retryable`` says it may be transient.
    """

    retryable = False

    def __init__(self, problem: str, fix: str):
        self.problem = problem
        self.fix = fix
        super().__init__(f"{problem} -> {fix}", allow_retries=self.retryable)


class ConfigurationError(MovielakeError):
    """A setting is missing or malformed."""


class InputMissingError(MovielakeError):
    """A raw file the lake needs is not in the landing location."""


class EndpointError(MovielakeError):
    """An S3 (or Glue) endpoint cannot be reached, or refuses the credentials."""

    retryable = True  # a dropped connection or throttling passes; the retry policy backs off


class EnvironmentProblem(MovielakeError):
    """Something on the machine is missing (Java, the S3A connector jars)."""
