"""Meta Conversions API: normalisation and hashing to Meta's letter, event builders, a client.

The strict Graph API emulator used by tests and ``capi dev`` lives in ``meta_capi.emulator``.
"""

from meta_capi.builders import (
    create_add_to_cart_event,
    create_event,
    create_initiate_checkout_event,
    create_lead_event,
    create_purchase_event,
)
from meta_capi.client import (
    DEFAULT_API_VERSION,
    DEFAULT_GRAPH_URL,
    MAX_EVENTS_PER_REQUEST,
    BatchOutcome,
    EventInput,
    MetaCAPIClient,
    MetaClientOptions,
    SendResult,
    SupportsPayload,
)
from meta_capi.errors import (
    MetaAPIError,
    MetaCredentialsError,
    MetaPermanentError,
    MetaRateLimitedError,
    MetaRetryableError,
    MetaTimeoutError,
    classify_error,
    parse_retry_after,
)
from meta_capi.fbc import build_fbc, fbc_from, is_valid_fbc
from meta_capi.hashing import (
    build_user_data,
    hash_email,
    hash_field,
    hash_name,
    hash_phone,
    is_sha256_hex,
)
from meta_capi.normalize import normalize_field
from meta_capi.server_event import ServerEvent, to_json_number
from meta_capi.validation import (
    BUSINESS_MESSAGING_EVENTS,
    MAX_EVENT_AGE,
    MAX_FUTURE_SKEW,
    MetaEventValidationError,
    is_expired,
    validate_server_event,
)

__all__ = [
    "BUSINESS_MESSAGING_EVENTS",
    "DEFAULT_API_VERSION",
    "DEFAULT_GRAPH_URL",
    "MAX_EVENTS_PER_REQUEST",
    "MAX_EVENT_AGE",
    "MAX_FUTURE_SKEW",
    "BatchOutcome",
    "EventInput",
    "MetaAPIError",
    "MetaCAPIClient",
    "MetaClientOptions",
    "MetaCredentialsError",
    "MetaEventValidationError",
    "MetaPermanentError",
    "MetaRateLimitedError",
    "MetaRetryableError",
    "MetaTimeoutError",
    "SendResult",
    "ServerEvent",
    "SupportsPayload",
    "build_fbc",
    "build_user_data",
    "classify_error",
    "create_add_to_cart_event",
    "create_event",
    "create_initiate_checkout_event",
    "create_lead_event",
    "create_purchase_event",
    "fbc_from",
    "hash_email",
    "hash_field",
    "hash_name",
    "hash_phone",
    "is_expired",
    "is_sha256_hex",
    "is_valid_fbc",
    "normalize_field",
    "parse_retry_after",
    "to_json_number",
    "validate_server_event",
]
