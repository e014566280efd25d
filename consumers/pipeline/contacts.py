"""The worker's contact step: link and record every event's person, one transaction per batch.

This used to run in the webhook request (two transactions per webhook on SQLite's single
writer); in the batch it costs one short transaction for hundreds of events. The events of
one person share a partition key (``producers.publisher.build_key``), so they arrive here in
order and are merged in that order. A database failure is ``DependencyUnavailableError``:
the worker pauses and replays the batch without burning attempts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy.orm import Session, sessionmaker

from capi_stream.avro.compiled import construct_model
from capi_stream.event import ConversionEvent
from consumers.pipeline.contact_facts import extract_facts
from storage.contacts import EventKey, LinkedContact, record_contacts
from storage.errors import map_db_errors

__all__ = ["SqlContactLinker", "link_events", "with_contact_id"]


def with_contact_id(event: ConversionEvent, contact_id: uuid.UUID) -> ConversionEvent:
    """``event`` carrying its linked ``contact_id``: what ``model_copy(update=...)`` gives
    (a shallow copy, not validated again), at a fraction of its cost per event."""
    copy: ConversionEvent = construct_model(
        ConversionEvent, {**event.__dict__, "contact_id": contact_id}
    )
    return copy


def link_events(
    session: Session,
    events: Sequence[ConversionEvent],
    default_country_by_tenant: Mapping[uuid.UUID, str | None],
) -> dict[EventKey, LinkedContact]:
    """Extract each event's facts and record them (``storage.contacts.record_contacts``)."""
    # By the tenant's int: a UUID hashes in Python, and this looks one up per event.
    countries = {tenant.int: country for tenant, country in default_country_by_tenant.items()}
    batch = [extract_facts(e, countries.get(e.tenant_id.int)) for e in events]
    return record_contacts(session, batch)


class SqlContactLinker:
    """``link(events, countries)`` -> each event's contact by ``(tenant_id, event_id)``."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def link(
        self,
        events: Sequence[ConversionEvent],
        default_country_by_tenant: Mapping[uuid.UUID, str | None],
    ) -> dict[EventKey, LinkedContact]:
        """Record the batch's contacts and return their state after each event's merge.

        Raises:
            DependencyUnavailableError: the database failed (or kept conflicting).
        """
        if not events:
            return {}
        with map_db_errors("database unavailable"), self._sessions() as session:
            linked = link_events(session, events, default_country_by_tenant)
            session.commit()
        return linked
