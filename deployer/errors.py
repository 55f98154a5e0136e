"""One error tree for aistack. Adapters translate library errors into it at the boundary.

    AistackError
    ├── ConfigError                 a setting is missing or malformed (names the variable)
    ├── InvalidStackName            a stack name breaks a rule (says which, and what would do)
    ├── IllegalTransition           a state change the transition table does not allow
    ├── StackBusy                   another deployment of the stack is active
    ├── NotFound                    no such deployment or stack
    ├── TransientError              worth retrying: timeouts, resets, 5xx, 429, locked
    │   └── UpstreamUnavailable     the circuit breaker is open: fail fast, no retry
    └── PermanentError              retrying will not help: 4xx, validation, conflicts
        ├── AuthError               the upstream refused our credentials
        ├── DeployFailed            Dokploy ran the deployment and it ended in error
        └── AmbiguousResource       a name matches two resources: refused, never guessed

Messages never carry secrets: adapters build them from status, code and a trimmed message.
"""

from __future__ import annotations


class AistackError(Exception):
    """Root of every error aistack raises on purpose."""


class ConfigError(AistackError):
    """A setting is missing or malformed."""


class InvalidStackName(AistackError):
    """A stack name breaks one of the naming rules."""


class IllegalTransition(AistackError):
    """A deployment state change that the transition table refuses."""


class StackBusy(AistackError):
    """Another deployment of the same stack is still active."""


class NotFound(AistackError):
    """The deployment or stack asked for does not exist."""


class TransientError(AistackError):
    """A failure that may pass: retried with backoff.

    `retry_after` carries the upstream's own hint (Retry-After, RateLimit-Reset) in seconds.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(TransientError):
    """The circuit breaker for an upstream is open: calls fail fast until it half-opens."""


class PermanentError(AistackError):
    """A failure that retrying will not fix."""


class AuthError(PermanentError):
    """The upstream refused the credentials."""


class DeployFailed(PermanentError):
    """The Dokploy deployment finished with status error or cancelled."""


class AmbiguousResource(PermanentError):
    """A name lookup found more than one candidate (Dokploy names are not unique)."""
