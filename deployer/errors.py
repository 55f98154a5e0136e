"""One error tree for aistack. Adapters translate library errors into it at the boundary.

    AistackError
    ├── ConfigError                 a setting is missing or malformed (names the variable)
    ├── InvalidStackName            a stack name breaks a rule (says which, and what would do)
    ├── IllegalTransition           a state change the transition table does not allow
    ├── StackBusy                   another deployment of the stack is active
    ├── QuotaExceeded               a new stack would pass AISTACK_MAX_STACKS(_PER_USER)
    ├── LifetimeTooLong             a lifetime asked for passes AISTACK_STACK_TTL_MAX
    ├── NotFound                    no such deployment or stack (in aistack's own records)
    ├── UpstreamError               an upstream's answer, or its silence: .status and .code
    ├── TransientError              worth retrying: timeouts, resets, 5xx, 429, locked
    │   ├── UpstreamUnavailable     the circuit breaker is open: fail fast, no retry
    │   └── TransientUpstreamError  (+ UpstreamError) no answer, a cut-off answer, 5xx, 429
    └── PermanentError              retrying will not help: 4xx, validation, conflicts
        ├── DeployFailed            Dokploy ran the deployment and it ended in error
        ├── AmbiguousResource       a name matches two resources: refused, never guessed
        └── PermanentUpstreamError  (+ UpstreamError) a 4xx, an error code, a body not JSON
            ├── AuthError           the upstream refused our credentials
            └── Gone                the upstream says the resource does not exist

UpstreamError is a second parent of the upstream variants, not the root of TransientError
and PermanentError: those are also raised for what is no upstream's answer (a busy SQLite
file, a deployment that ran to an error, an env value refused), and retry and the breaker
decide by them alone. `except UpstreamError` catches an upstream's answer or silence as the
adapters (and PostgreSQL's refused login, as AuthError) report it, not the open breaker;
`status` and `code` tell the answers apart, never the message text.

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


class QuotaExceeded(AistackError):
    """A new stack would pass the limit of stacks one person, or the server, may hold."""


class LifetimeTooLong(AistackError):
    """A lifetime asked for (`--for`, extend) is longer than AISTACK_STACK_TTL_MAX allows."""


class NotFound(AistackError):
    """The deployment or stack asked for does not exist."""


class UpstreamError(AistackError):
    """What an upstream (Dokploy, Hetzner DNS, the database) answered, or that it did not.

    `status` is the HTTP status, None when there was no answer (or no HTTP); `code` is the
    upstream's own error code (Dokploy's `NOT_FOUND`, `BAD_REQUEST`; Hetzner's `not_found`,
    `uniqueness_error`, `rate_limit_exceeded`), None when it gave none.
    """

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class TransientError(AistackError):
    """A failure that may pass: retried with backoff.

    `retry_after` carries the upstream's own hint (Retry-After, RateLimit-Reset) in seconds.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamUnavailable(TransientError):
    """The circuit breaker for an upstream is open: calls fail fast until it half-opens."""


class TransientUpstreamError(UpstreamError, TransientError):
    """An upstream failure that may pass: no answer, a cut-off answer, 5xx, 429, locked."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class PermanentError(AistackError):
    """A failure that retrying will not fix."""


class DeployFailed(PermanentError):
    """The Dokploy deployment finished with status error or cancelled."""


class AmbiguousResource(PermanentError):
    """A name lookup found more than one candidate (Dokploy names are not unique)."""


class PermanentUpstreamError(UpstreamError, PermanentError):
    """An upstream answer that retrying will not change: a 4xx, a failed action, a body that
    is not the API's (an HTML page from a proxy)."""


class AuthError(PermanentUpstreamError):
    """The upstream refused the credentials."""


class Gone(PermanentUpstreamError):
    """The upstream says the resource does not exist (Dokploy NOT_FOUND, Hetzner not_found):
    an undo takes it as already done, a read as nothing there."""
