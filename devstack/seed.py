"""The demo tenant `capi dev` creates: Meta credentials for the emulator and webhook secrets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from storage.tenants import META_PROVIDER, upsert_integration, upsert_tenant

DEMO_TENANT_ID = uuid.UUID("00000000-0000-4000-8000-00000000d3e0")


@dataclass(frozen=True, slots=True)
class DemoTenant:
    """Everything a newcomer needs to send the demo tenant a webhook (dev-only secrets)."""

    tenant_id: uuid.UUID = DEMO_TENANT_ID
    name: str = "Demo Clinic"
    default_country: str = "US"
    pixel_id: str = "1234567890123456"
    access_token: str = "EAAB-demo-token-for-the-emulator"  # noqa: S105 - emulator-only
    test_event_code: str = "TEST12345"
    stripe_secret: str = "whsec_demo_secret"  # noqa: S105 - dev-only secret
    shared_secret: str = "demo-shared-secret"  # noqa: S105 - dev-only secret

    def webhook_url(self, base_url: str, source: str) -> str:
        return f"{base_url}/webhooks/{self.tenant_id}/{source}"


def seed_demo_tenant(
    sessions: sessionmaker[Session], graph_url: str | None, tenant: DemoTenant | None = None
) -> DemoTenant:
    """Create or refresh the demo tenant; idempotent.

    ``graph_url`` pins the demo tenant to the emulator (the dev stack's default Graph URL
    is the emulator too, so tenants added while it runs go there unless they name their
    own with ``capi tenants set-meta --graph-url``).
    """
    tenant = tenant or DemoTenant()
    meta: dict[str, str] = {
        "pixel_id": tenant.pixel_id,
        "capi_access_token": tenant.access_token,
        "test_event_code": tenant.test_event_code,
    }
    if graph_url:
        meta["graph_url"] = graph_url
    with sessions.begin() as session:
        upsert_tenant(session, tenant.tenant_id, tenant.name, tenant.default_country)
        upsert_integration(session, tenant.tenant_id, META_PROVIDER, meta, merge=False)
        upsert_integration(
            session, tenant.tenant_id, "stripe", {"webhook_secret": tenant.stripe_secret}
        )
        upsert_integration(
            session, tenant.tenant_id, "ghl", {"workflow_secret": tenant.shared_secret}
        )
        for source in ("chatbot", "perspective", "denefits"):
            upsert_integration(session, tenant.tenant_id, source, {"secret": tenant.shared_secret})
    return tenant
