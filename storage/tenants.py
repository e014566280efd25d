"""Repository of tenants and their integrations (Meta credentials, webhook secrets)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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
    """The provider's credentials for the tenant, or None when it has none."""
    found = session.scalar(
        select(TenantIntegration.credentials).where(
            TenantIntegration.tenant_id == tenant_id, TenantIntegration.provider == provider
        )
    )
    return dict(found) if found is not None else None


def upsert_integration(
    session: Session,
    tenant_id: uuid.UUID,
    provider: str,
    credentials: Mapping[str, Any],
    *,
    merge: bool = True,
) -> TenantIntegration:
    """Create or update a provider's credentials; ``merge`` keeps keys not given."""
    integration = session.scalar(
        select(TenantIntegration).where(
            TenantIntegration.tenant_id == tenant_id, TenantIntegration.provider == provider
        )
    )
    if integration is None:
        integration = TenantIntegration(
            tenant_id=tenant_id, provider=provider, credentials=dict(credentials)
        )
        session.add(integration)
    else:
        base = dict(integration.credentials) if merge else {}
        integration.credentials = {**base, **credentials}
    session.flush()
    return integration
