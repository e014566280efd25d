"""Repository of tenants and their integrations (Meta credentials, webhook secrets).

Credentials are sealed at rest (``capi_stream.secrets``); these functions are the one place
that seals and opens them, with the box of the session's factory.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from capi_stream.errors import SecretsKeyError
from capi_stream.runtime import Runtime
from capi_stream.secrets import SECRETS_INFO_KEY, secret_box_of
from storage.models import Tenant, TenantIntegration

META_PROVIDER = "meta"


def get_tenant(session: Session, tenant_id: uuid.UUID) -> Tenant | None:
    return session.get(Tenant, tenant_id)


def upsert_tenant(
    session: Session, tenant_id: uuid.UUID, name: str, default_country: str | None = None
) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        tenant = Tenant(tenant_id=tenant_id, name=name, default_country=default_country)
        session.add(tenant)
    else:
        tenant.name = name
        tenant.default_country = default_country
    session.flush()
    return tenant


def get_credentials(session: Session, tenant_id: uuid.UUID, provider: str) -> dict[str, Any] | None:
    """The provider's credentials for the tenant, or None when it has none.

    Raises:
        SecretsKeyError: the process has no key, or not the one that sealed them.
    """
    sealed = session.scalar(
        select(TenantIntegration.sealed_credentials).where(
            TenantIntegration.tenant_id == tenant_id, TenantIntegration.provider == provider
        )
    )
    return secret_box_of(session).open(sealed) if sealed is not None else None


def get_integrations(session: Session, tenant_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Every provider's credentials for the tenant, by provider.

    Raises:
        SecretsKeyError: the process has no key, or not the one that sealed them.
    """
    rows = session.execute(
        select(TenantIntegration.provider, TenantIntegration.sealed_credentials).where(
            TenantIntegration.tenant_id == tenant_id
        )
    ).all()
    if not rows:
        return {}
    box = secret_box_of(session)
    return {provider: box.open(sealed) for provider, sealed in rows}


def upsert_integration(
    session: Session,
    tenant_id: uuid.UUID,
    provider: str,
    credentials: Mapping[str, Any],
    *,
    merge: bool = True,
) -> TenantIntegration:
    """Create or update a provider's credentials; ``merge`` keeps keys not given.

    Raises:
        SecretsKeyError: the process has no key, or not the one that sealed the stored ones.
    """
    box = secret_box_of(session)
    integration = session.scalar(
        select(TenantIntegration).where(
            TenantIntegration.tenant_id == tenant_id, TenantIntegration.provider == provider
        )
    )
    if integration is None:
        integration = TenantIntegration(
            tenant_id=tenant_id, provider=provider, sealed_credentials=box.seal(credentials)
        )
        session.add(integration)
    else:
        base = box.open(integration.sealed_credentials) if merge else {}
        integration.sealed_credentials = box.seal({**base, **credentials})
    session.flush()
    return integration


def reseal_integrations(session: Session) -> int:
    """Re-seal every integration under the newest key (rotation); returns how many.

    Raises:
        SecretsKeyError: a row opens with none of the keys (nothing is changed then, as
        long as the caller's transaction rolls back).
    """
    box = secret_box_of(session)
    count = 0
    query = select(TenantIntegration).order_by(TenantIntegration.id)
    for integration in session.scalars(query).all():
        integration.sealed_credentials = box.reseal(integration.sealed_credentials)
        count += 1
    session.flush()
    return count


def check_secrets_key(session: Session) -> int:
    """Fail early when stored credentials exist that this process cannot open.

    For the start of ``serve``, ``worker`` and the tenants CLI: a missing or wrong key is
    then a clear error at once, not a 503 or a paused worker later. Returns the number of
    integrations checked.

    Raises:
        SecretsKeyError: credentials are stored and there is no key, or a row does not open.
    """
    box = session.info.get(SECRETS_INFO_KEY)
    if box is None:
        stored = session.scalar(select(func.count()).select_from(TenantIntegration)) or 0
        if stored:
            try:
                secret_box_of(session)
            except SecretsKeyError as exc:
                raise SecretsKeyError(f"{stored} tenant integration(s) stored: {exc}") from None
        return 0
    count = 0
    for sealed in session.scalars(select(TenantIntegration.sealed_credentials)):
        secret_box_of(session).open(sealed)
        count += 1
    return count


def verify_secrets_key(sessions: sessionmaker[Session]) -> None:
    """At the start of a process: stored credentials exist that its key cannot open?

    An unreachable or unmigrated database is left to the process's own handling (it waits
    or fails on first use); this check only turns a key mistake into an error at once.

    Raises:
        SecretsKeyError: credentials are stored and the key is missing or wrong.
    """
    try:
        with sessions() as session:
            check_secrets_key(session)
    except SQLAlchemyError:
        return


def require_secrets_key(runtime: Runtime) -> None:
    """``verify_secrets_key`` at the start of ``serve`` and ``worker``; frees the engine first
    when it fails, since the process ends there.

    Raises:
        SecretsKeyError: credentials are stored and the key is missing or wrong.
    """
    try:
        verify_secrets_key(runtime.sessions)
    except SecretsKeyError:
        runtime.engine.dispose()
        raise


@dataclass(frozen=True, slots=True)
class TenantSummary:
    """A tenant and the providers it has an integration for (sorted)."""

    tenant_id: uuid.UUID
    name: str
    default_country: str | None
    providers: tuple[str, ...]


def list_tenant_summaries(session: Session) -> list[TenantSummary]:
    """Every tenant by name, with its integrations' providers (credentials stay sealed)."""
    tenants = session.execute(select(Tenant).order_by(Tenant.name)).scalars().all()
    providers: dict[uuid.UUID, list[str]] = {}
    for tenant_id, provider in session.execute(
        select(TenantIntegration.tenant_id, TenantIntegration.provider)
    ):
        providers.setdefault(tenant_id, []).append(provider)
    return [
        TenantSummary(
            t.tenant_id, t.name, t.default_country, tuple(sorted(providers.get(t.tenant_id, [])))
        )
        for t in tenants
    ]


def read_default_countries(session: Session) -> dict[uuid.UUID, str | None]:
    """Each tenant's default country (None when it has none)."""
    rows = session.execute(select(Tenant.tenant_id, Tenant.default_country))
    return {row[0]: row[1] for row in rows}
