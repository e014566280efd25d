"""The pipeline's exception tree: every error says how it must be routed.

    CapiError
    ├── RetriableError                 try the same attempt again later (retry tier)
    │   └── DependencyUnavailableError  not the event's fault (database, broker down):
    │       │                           back off and pause, never burn an attempt
    │       └── SecretsKeyError        CAPI_SECRETS_KEY missing, malformed or wrong
    ├── ClientUnrecoverableError       a Kafka client kept failing after rebuilds: exit
    │                                   non-zero so the orchestrator restarts the process
    └── PermanentError                 retrying cannot help: dead-letter at once
        ├── DecodeError                undecodable bytes or unknown schema fingerprint
        ├── EventValidationError       the event breaks a rule (ours or Meta's)
        ├── UnknownTenantError         the tenant does not exist
        └── ConfigurationError         a tenant's integration is missing or incomplete
            └── UnknownSettingError    a setting (env var, .env key) that does not exist

Meta's own errors (``meta_capi.errors``) subclass these two branches, so routing needs
only ``isinstance`` checks. Errors carry fields, not strings to parse.
"""

from __future__ import annotations


class CapiError(Exception):
    """Root of every error this project raises on purpose."""


class RetriableError(CapiError):
    """The attempt failed for a reason that may pass; the event may succeed later."""


class DependencyUnavailableError(RetriableError):
    """A dependency of ours (database, broker) is unavailable; the event is not at fault."""


class ClientUnrecoverableError(CapiError):
    """A Kafka client was rebuilt for too long without a success; only a restart can help."""


class PermanentError(CapiError):
    """Retrying cannot succeed; the event goes to the dead-letter topic with this reason."""


class DecodeError(PermanentError):
    """The bytes are not a ConversionEvent this reader knows."""


class EventValidationError(PermanentError):
    """The event breaks a rule; ``field`` names the offending field when one is known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnknownTenantError(PermanentError):
    """No tenant with this id is configured."""

    def __init__(self, tenant_id: str) -> None:
        super().__init__(f"unknown tenant {tenant_id}")
        self.tenant_id = tenant_id


class ConfigurationError(PermanentError):
    """An integration is missing or incomplete; the message says what to fix."""


class UnknownSettingError(ConfigurationError):
    """A setting that does not exist, most likely a typo; ``suggestion`` is the closest one."""

    def __init__(self, name: str, where: str, suggestion: str | None) -> None:
        hint = f"; did you mean {suggestion}?" if suggestion else ""
        super().__init__(f"unknown setting {name} in {where}{hint}")
        self.name = name
        self.where = where
        self.suggestion = suggestion


class SecretsKeyError(DependencyUnavailableError):
    """Stored secrets cannot be sealed or opened: the key is missing, malformed or wrong.

    The operator's to fix, never the event's fault: events wait (503, paused worker), none is
    dead-lettered for it.
    """
