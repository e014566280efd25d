"""Shared plumbing of capi-stream: settings, the error tree, the event model and its codec."""

from capi_stream.avro.codec import EventCodec, build_codec
from capi_stream.errors import (
    CapiError,
    ConfigurationError,
    DecodeError,
    DependencyUnavailableError,
    EventValidationError,
    PermanentError,
    RetriableError,
    UnknownTenantError,
)
from capi_stream.event import ConversionEvent, build_event_id
from capi_stream.settings import CapiSettings

__all__ = [
    "CapiError",
    "CapiSettings",
    "ConfigurationError",
    "ConversionEvent",
    "DecodeError",
    "DependencyUnavailableError",
    "EventCodec",
    "EventValidationError",
    "PermanentError",
    "RetriableError",
    "UnknownTenantError",
    "build_codec",
    "build_event_id",
]
