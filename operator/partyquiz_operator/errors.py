"""Errors of the operator, classified by what the reconcile loop should do about them.

    OperatorError
    ├── SpecError            the PartyQuiz spec cannot be reconciled; retrying will not help
    └── TransientError       the world is not ready yet (missing Secret, conflict, 5xx); retry later
        └── KubeApiError     an API request failed; carries verb, resource and HTTP status

``handlers`` maps these to kopf's permanent and temporary errors in one place; nothing else
raises kopf exceptions.
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base of every error raised by the operator's own code."""


class SpecError(OperatorError):
    """The spec is valid YAML but cannot be reconciled as written."""


class TransientError(OperatorError):
    """A condition that should clear by itself; retry after ``delay`` seconds."""

    def __init__(self, message: str, *, delay: float = 10.0) -> None:
        super().__init__(message)
        self.delay = delay


class KubeApiError(TransientError):
    """A Kubernetes API request failed with ``status`` (0 when no response arrived)."""

    def __init__(self, verb: str, resource: str, status: int, message: str) -> None:
        super().__init__(f"{verb} {resource}: HTTP {status}: {message}", delay=5.0)
        self.verb = verb
        self.resource = resource
        self.status = status

    @property
    def is_permanent(self) -> bool:
        """Return whether retrying the same request cannot succeed (400, 403, 422)."""
        return self.status in (400, 403, 422)
