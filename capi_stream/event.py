"""The normalised conversion event: the one contract between producers and consumers.

It mirrors ``schemas/avro/conversion_event.avsc``; ``capi_stream.avro.codec`` turns one into
the other. Validation here is structural (types, sizes, known names); Meta's own rules
(7-day window, required fields per action_source) are applied by ``meta_capi``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

SCHEMA_VERSION = 1

Source = Literal["chatbot", "ghl", "perspective", "stripe", "denefits", "api"]
ActionSource = Literal[
    "email",
    "website",
    "app",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
]
MessagingChannel = Literal["whatsapp", "messenger", "instagram"]


def _utc_millis(value: datetime) -> datetime:
    """Aware -> UTC at millisecond precision (Avro timestamp-millis), so a round trip is exact."""
    if value.tzinfo is None:
        raise ValueError("a timestamp must carry a timezone")
    if value.tzinfo is UTC and not value.microsecond % 1000:
        return value  # every decoded event: nothing to convert or truncate
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


UtcMillis = Annotated[datetime, AfterValidator(_utc_millis)]
AVRO_INT_MAX = 2**31 - 1  # num_items is an Avro int


def _reject_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL; refusing it here keeps a poison value off the topic.
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


# Measured faster than pydantic-core's own checks: a ``pattern`` constraint (which would also
# change the error's type and message) and a chained custom-error schema are both slower.
NoNul = AfterValidator(_reject_nul)
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=512), NoNul]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=4096), NoNul]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=255), NoNul]

# Namespace of the deterministic event ids; never change it: ids must stay stable forever.
EVENT_ID_NAMESPACE = uuid.UUID("6f1c1d4e-5b0a-4c2e-9a53-0c8e4a1f7d21")
_NAMESPACE_BYTES = EVENT_ID_NAMESPACE.bytes
# RFC 4122 variant bits (10xx) over the high nibble of the ninth byte.
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def build_event_id(tenant_id: uuid.UUID | str, source: str, source_event_id: str) -> str:
    """Return the deterministic CAPI ``event_id`` of a conversion (a UUIDv5 of its business key).

    A redelivered or duplicated webhook yields the same id, so Meta and our upsert dedupe it.

    Raises:
        UnicodeEncodeError: the key holds a lone surrogate (as ``uuid.uuid5`` would).
    """
    # ``str(uuid.uuid5(...))`` spelled out: the same SHA-1 and bits, without building two
    # UUID objects, which cost twice the digest itself (one per webhook).
    key = f"{tenant_id}:{source}:{source_event_id}".encode()
    h = hashlib.sha1(_NAMESPACE_BYTES + key, usedforsecurity=False).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# (tenant_id, event_id): an event_id is unique only within its tenant.
EventKey = tuple[uuid.UUID, str]

# The ``SourceIds`` attributes, in the order contacts link on (each is a ``contacts`` column).
SOURCE_ID_FIELDS = (
    "mc_subscriber_id",
    "ghl_contact_id",
    "stripe_customer_id",
    "perspective_contact_id",
    "denefits_contract_code",
)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class UserIdentity(_Model):
    """Contact fields: raw on the main topic; 64-hex SHA-256 values are accepted as they are."""

    emails: list[ShortText] = Field(default_factory=list, max_length=10)
    phones: list[ShortText] = Field(default_factory=list, max_length=10)
    first_name: ShortText | None = None
    last_name: ShortText | None = None
    gender: ShortText | None = None
    date_of_birth: ShortText | None = None
    city: ShortText | None = None
    state: ShortText | None = None
    zip: ShortText | None = None
    country: ShortText | None = None
    external_ids: list[ShortText] = Field(default_factory=list, max_length=10)
    page_id: ShortText | None = None
    page_scoped_user_id: ShortText | None = None
    ig_account_id: ShortText | None = None
    ig_sid: ShortText | None = None
    whatsapp_business_account_id: ShortText | None = None
    ctwa_clid: ShortText | None = None
    lead_id: ShortText | None = None


class SourceIds(_Model):
    """The sources' own ids for this person."""

    mc_subscriber_id: ShortText | None = None
    ghl_contact_id: ShortText | None = None
    stripe_customer_id: ShortText | None = None
    perspective_contact_id: ShortText | None = None
    denefits_contract_code: ShortText | None = None


class Attribution(_Model):
    """Click and campaign identifiers; ``fbc``/``fbp`` are never hashed."""

    fbclid: ShortText | None = None
    fbc: ShortText | None = None
    fbp: ShortText | None = None
    ad_id: ShortText | None = None
    click_time: UtcMillis | None = None
    utm_source: ShortText | None = None
    utm_medium: ShortText | None = None
    utm_campaign: ShortText | None = None
    utm_content: ShortText | None = None
    utm_term: ShortText | None = None
    landing_url: LongText | None = None


class CustomData(_Model):
    """Meta's custom_data; money is a Decimal in major units with its ISO 4217 currency."""

    value: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=4)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    order_id: ShortText | None = None
    content_name: ShortText | None = None
    content_category: ShortText | None = None
    content_ids: list[ShortText] = Field(default_factory=list, max_length=100)
    num_items: int | None = Field(default=None, ge=0, le=AVRO_INT_MAX)
    extra: dict[ShortText, LongText] = Field(default_factory=dict, max_length=50)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper_currency(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


# Frozen and never changed in place: each missing sub-model is one shared empty instance, so
# an event without (say) attribution does not run a validation pass to build an empty one.
_NO_USER = UserIdentity()
_NO_SOURCE_IDS = SourceIds()
_NO_ATTRIBUTION = Attribution()
_NO_CUSTOM_DATA = CustomData()


class ConversionEvent(_Model):
    """One conversion, as published to the main topic."""

    schema_version: int = SCHEMA_VERSION
    event_id: EventId
    tenant_id: uuid.UUID
    contact_id: uuid.UUID | None = None
    source: Source
    source_event_id: ShortText
    delivery_id: ShortText | None = None
    event_name: Annotated[str, StringConstraints(min_length=1, max_length=100), NoNul]
    event_time: UtcMillis
    action_source: ActionSource
    event_source_url: LongText | None = None
    client_user_agent: LongText | None = None
    client_ip_address: ShortText | None = None
    messaging_channel: MessagingChannel | None = None
    user: UserIdentity = Field(default_factory=lambda: _NO_USER)
    source_ids: SourceIds = Field(default_factory=lambda: _NO_SOURCE_IDS)
    attribution: Attribution = Field(default_factory=lambda: _NO_ATTRIBUTION)
    custom_data: CustomData = Field(default_factory=lambda: _NO_CUSTOM_DATA)

    @classmethod
    def create(
        cls,
        *,
        tenant_id: uuid.UUID | str,
        source: Source,
        source_event_id: str,
        **fields: object,
    ) -> ConversionEvent:
        """Build an event whose ``event_id`` is derived from its business key."""
        event_id = build_event_id(tenant_id, source, source_event_id)
        return cls.model_validate(
            {
                "event_id": event_id,
                "tenant_id": tenant_id,
                "source": source,
                "source_event_id": source_event_id,
                **fields,
            }
        )
