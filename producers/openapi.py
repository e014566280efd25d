"""The hand-written OpenAPI 3.1 document of the webhook app (served at ``/openapi.json``).

Written by hand rather than generated: the webhook bodies belong to the senders (Stripe,
GHL...) and are verified byte for byte, so what we promise is the routes, the status codes
and the error shape, which this document states exactly.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_openapi"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ERROR, description)


def _webhook_operation(sources: list[str]) -> dict[str, Any]:
    return {
        "operationId": "receiveWebhook",
        "summary": "Receive one webhook delivery and publish its conversion event",
        "description": (
            "Authenticates the delivery with the tenant's secret for the source, maps it to a "
            "ConversionEvent and answers only after the broker acknowledged it (acks=all). "
            "Redeliveries publish the same deterministic event_id. Bodies are JSON: "
            "Content-Type application/json (or +json), UTF-8; anything else is 415."
        ),
        "parameters": [
            {
                "name": "tenant_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            },
            {
                "name": "source",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": sources},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {}}},
        },
        "responses": {
            "202": _json({"$ref": "#/components/schemas/Accepted"}, "Published and acknowledged"),
            "200": _json({"$ref": "#/components/schemas/Ignored"}, "Valid, not a conversion"),
            "400": _error("Malformed JSON or a value the event schema refuses"),
            "401": _error("Missing, forged or expired signature or secret"),
            "403": _error("The tenant has no integration configured for this source"),
            "404": _error("Unknown tenant or source"),
            "409": _error("A signed GHL delivery id received before"),
            "413": _error("Body larger than the configured limit"),
            "415": _error("Body declared as something other than JSON"),
            "422": _error("Nobody identified (no email, phone or contact id)"),
            "503": {
                **_error("Broker or database unavailable; retry after the given delay"),
                "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            },
        },
    }


def _probe(description: str, ok: str) -> dict[str, Any]:
    return {"get": {"summary": description, "responses": {"200": {"description": ok}}}}


def build_openapi(sources: list[str]) -> dict[str, Any]:
    """The document for an app serving ``sources``."""
    readiness = {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["ready", "unavailable"]},
            "broker": {"type": "string", "enum": ["ok", "unavailable"]},
            "database": {"type": "string", "enum": ["ok", "unavailable"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "capi-stream webhooks", "version": "1.0.0"},
        "paths": {
            "/webhooks/{tenant_id}/{source}": {"post": _webhook_operation(sources)},
            "/healthz": _probe("Liveness: the process is up", "Alive"),
            "/readyz": {
                "get": {
                    "summary": "Readiness: broker and database reachable",
                    "responses": {
                        "200": _json(readiness, "Ready"),
                        "503": _json(readiness, "Not ready"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": _probe("This document", "OpenAPI 3.1 JSON"),
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["type", "message"],
                            "properties": {
                                "type": {"type": "string"},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
                "Accepted": {
                    "type": "object",
                    "required": ["status", "event_id"],
                    "properties": {"status": {"const": "accepted"}, "event_id": {"type": "string"}},
                },
                "Ignored": {
                    "type": "object",
                    "required": ["status", "reason"],
                    "properties": {"status": {"const": "ignored"}, "reason": {"type": "string"}},
                },
            }
        },
    }
