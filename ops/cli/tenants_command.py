"""`capi tenants`: add tenants and set their Meta credentials and webhook secrets.

Secrets are validated on the way in and never printed whole: ``show`` masks them.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click
import pycountry
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from capi_stream.database import build_session_factory
from capi_stream.runtime import build_secrets, open_database, resolve_settings
from capi_stream.secrets import generate_key
from capi_stream.settings import CapiSettings
from ops.cli.options import read_secret
from storage.models import Tenant
from storage.tenants import (
    META_PROVIDER,
    get_credentials,
    get_integrations,
    get_tenant,
    list_tenant_summaries,
    reseal_integrations,
    upsert_integration,
    upsert_tenant,
    verify_secrets_key,
)

# Which credential keys each webhook source takes; the first list is required (any one of
# the second list is required when the first is empty).
SOURCE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "stripe": (("webhook_secret",), ()),
    "ghl": ((), ("public_key_ed25519", "public_key_rsa", "workflow_secret")),
    "chatbot": (("secret",), ()),
    "perspective": (("secret",), ()),
    "denefits": (("secret",), ()),
}
PUBLIC_KEYS = ("public_key_ed25519", "public_key_rsa")
CLEAR_KEYS = frozenset({"pixel_id", "test_event_code", "graph_url", "verify_test_event_code"})


def mask(value: object) -> str:
    """``EAAB…9xQ`` for long values (tokens), ``****`` below 24 characters, so at most
    7 characters of a secret ever show."""
    text = str(value)
    if len(text) < 24:
        return "****"
    return f"{text[:4]}…{text[-3:]}"


def _country(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise click.BadParameter(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return code


def _tenant_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a tenant id (a UUID)") from None


@contextmanager
def _session(ctx: click.Context) -> Iterator[Session]:
    settings = resolve_settings(ctx.obj)  # a running stack's database and key file
    engine = open_database(settings)
    try:
        sessions = build_session_factory(engine, build_secrets(settings))
        verify_secrets_key(sessions)
        with sessions.begin() as session:
            yield session
    finally:
        engine.dispose()


def _existing(session: Session, tenant_id: uuid.UUID) -> Tenant:
    tenant = get_tenant(session, tenant_id)
    if tenant is None:
        raise click.ClickException(f"no tenant {tenant_id}; add it with `capi tenants add`")
    return tenant


@click.group()
@click.pass_context
def tenants(ctx: click.Context) -> None:
    """Manage tenants, their Meta credentials and their webhook secrets."""
    ctx.obj = CapiSettings()


@tenants.command()
@click.option("--name", required=True, help="Display name of the business.")
@click.option("--id", "tenant_id", help="Tenant id (UUID); a new one when omitted.")
@click.option("--default-country", help="ISO alpha-2 country for national phone numbers.")
@click.pass_context
def add(ctx: click.Context, name: str, tenant_id: str | None, default_country: str | None) -> None:
    """Add a tenant."""
    if not name.strip():
        raise click.BadParameter("must not be empty", param_hint="--name")
    country = _country(default_country)
    new_id = _tenant_id(tenant_id) if tenant_id else uuid.uuid4()
    with _session(ctx) as session:
        if get_tenant(session, new_id) is not None:
            raise click.ClickException(f"tenant {new_id} exists already")
        upsert_tenant(session, new_id, name.strip(), country)
    click.echo(f"added tenant {new_id} ({name.strip()})")


@tenants.command("set-meta")
@click.argument("tenant_id")
@click.option("--pixel-id", required=True, help="Meta pixel (dataset) id: digits only.")
@click.option(
    "--access-token",
    callback=read_secret,
    help="Conversions API token; if omitted: asked at a terminal (hidden), or read from stdin "
    "when piped.",
)
@click.option("--test-event-code", help="Routes events to Events Manager's Test Events tab.")
@click.option(
    "--graph-url",
    help="Send this tenant's events to another Graph API endpoint (an emulator, a test "
    "proxy); '' = back to META_GRAPH_URL.",
)
@click.pass_context
def set_meta(
    ctx: click.Context,
    tenant_id: str,
    pixel_id: str,
    access_token: str,
    test_event_code: str | None,
    graph_url: str | None = None,
) -> None:
    """Set the tenant's Meta pixel id and Conversions API access token."""
    pixel = pixel_id.strip()
    if not pixel.isdigit():
        raise click.BadParameter("must be digits only", param_hint="--pixel-id")
    token = access_token.strip()
    if not token:
        raise click.BadParameter("must not be empty", param_hint="--access-token")
    credentials: dict[str, Any] = {"pixel_id": pixel, "capi_access_token": token}
    if test_event_code is not None:
        credentials["test_event_code"] = test_event_code.strip() or None
    if graph_url is not None:
        credentials["graph_url"] = _graph_url(graph_url)
    with _session(ctx) as session:
        tenant = _existing(session, _tenant_id(tenant_id))
        upsert_integration(session, tenant.tenant_id, META_PROVIDER, credentials)
    click.echo(f"meta credentials set for {tenant_id}: pixel {pixel}, token {mask(token)}")
    if graph_url is not None:
        click.echo(f"graph url: {credentials['graph_url'] or 'META_GRAPH_URL (the default)'}")


def _graph_url(value: str) -> str | None:
    url = value.strip().rstrip("/")
    if not url:
        return None
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or parsed.query:
        raise click.BadParameter(
            "must be an http(s) URL such as http://127.0.0.1:8081", param_hint="--graph-url"
        )
    return url


def _read_value(value: str) -> str:
    """``@path`` reads the value from a file (PEM keys span lines)."""
    if value.startswith("@"):
        return Path(value[1:]).read_text().strip()
    return value.strip()


def _check_public_key(key: str, value: str) -> None:
    if not value.startswith("-----BEGIN"):
        return  # raw/base64 forms are checked by the webhook adapter when it loads them
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        loaded = load_pem_public_key(value.encode())
    except ValueError as exc:
        raise click.BadParameter(f"not a PEM public key: {exc}", param_hint=key) from None
    expected = ed25519.Ed25519PublicKey if key == "public_key_ed25519" else rsa.RSAPublicKey
    if not isinstance(loaded, expected):
        raise click.BadParameter(f"not an {expected.__name__}", param_hint=key)


def validate_source_secrets(source: str, given: dict[str, str]) -> dict[str, str]:
    """The credentials to store for ``source``, or a ``click.BadParameter`` saying what's wrong."""
    required, any_of = SOURCE_FIELDS[source]
    allowed = set(required) | set(any_of)
    extra = sorted(set(given) - allowed)
    if extra:
        names = ", ".join(f"--{k.replace('_', '-')}" for k in extra)
        raise click.UsageError(f"{source} takes no {names}")
    missing = [k for k in required if not given.get(k)]
    if missing:
        raise click.UsageError(f"{source} needs --{missing[0].replace('_', '-')}")
    if any_of and not any(given.get(k) for k in any_of):
        options = " / ".join(f"--{k.replace('_', '-')}" for k in any_of)
        raise click.UsageError(f"{source} needs at least one of {options}")
    secret = given.get("webhook_secret")
    if source == "stripe" and secret is not None and not secret.startswith("whsec_"):
        raise click.BadParameter(
            "a Stripe signing secret starts with whsec_", param_hint="--webhook-secret"
        )
    for key in PUBLIC_KEYS:
        if given.get(key):
            _check_public_key(key, given[key])
    return {k: v for k, v in given.items() if v}


@tenants.command("set-secret")
@click.argument("tenant_id")
@click.argument("source", type=click.Choice(sorted(SOURCE_FIELDS)))
@click.option("--webhook-secret", help="stripe: the endpoint's signing secret (whsec_...).")
@click.option("--public-key-ed25519", help="ghl: Ed25519 public key (PEM, or @file).")
@click.option("--public-key-rsa", help="ghl: RSA public key (PEM, or @file).")
@click.option("--workflow-secret", help="ghl: shared secret of workflow webhooks.")
@click.option("--secret", help="chatbot / perspective / denefits: the shared secret.")
@click.pass_context
def set_secret(ctx: click.Context, /, tenant_id: str, source: str, **options: str | None) -> None:
    """Set a webhook source's secret or verification keys for the tenant."""
    given = {key: _read_value(value) for key, value in options.items() if value is not None}
    credentials = validate_source_secrets(source, given)
    with _session(ctx) as session:
        tenant = _existing(session, _tenant_id(tenant_id))
        upsert_integration(session, tenant.tenant_id, source, credentials)
    shown = ", ".join(f"{k}={mask(v)}" for k, v in sorted(credentials.items()))
    click.echo(f"{source} credentials set for {tenant_id}: {shown}")


@tenants.command()
@click.argument("tenant_id")
@click.pass_context
def show(ctx: click.Context, tenant_id: str) -> None:
    """Show a tenant and its integrations, secrets masked."""
    with _session(ctx) as session:
        tenant = _existing(session, _tenant_id(tenant_id))
        integrations = get_integrations(session, tenant.tenant_id)
        table = Table(title=f"tenant {tenant.tenant_id}")
        table.add_column("field")
        table.add_column("value")
        table.add_row("name", tenant.name)
        table.add_row("default country", tenant.default_country or "-")
        for provider, credentials in sorted(integrations.items()):
            for key, value in sorted(credentials.items()):
                shown = "-" if value is None else str(value) if key in CLEAR_KEYS else mask(value)
                table.add_row(f"{provider}.{key}", shown)
    Console(width=120).print(table)


@tenants.command("list")
@click.pass_context
def list_tenants(ctx: click.Context) -> None:
    """List tenants and which integrations each has."""
    with _session(ctx) as session:
        summaries = list_tenant_summaries(session)
        table = Table(title="tenants")
        for column in ("tenant id", "name", "country", "integrations"):
            table.add_column(column)
        for tenant in summaries:
            names = ", ".join(tenant.providers) or "-"
            table.add_row(str(tenant.tenant_id), tenant.name, tenant.default_country or "-", names)
    Console(width=140).print(table)


@tenants.command()
@click.argument("tenant_id")
@click.option(
    "--test-event-code",
    help="Events Manager > your pixel > Test events shows it [default: the stored one].",
)
@click.option("--save", is_flag=True, help="Store --test-event-code for later verifications.")
@click.pass_context
def verify(ctx: click.Context, tenant_id: str, test_event_code: str | None, save: bool) -> None:
    """Send one test event with the tenant's credentials and report Meta's answer.

    Exits 0 when Meta accepted it, 1 when Meta refused it (the message says the fix).
    """
    from datetime import UTC, datetime

    from capi_stream.errors import CapiError
    from meta_capi.client import MetaCAPIClient, SendResult
    from ops.cli.verify_report import build_verify_event, judge_answer

    settings: CapiSettings = resolve_settings(ctx.obj)
    with _session(ctx) as session:
        tenant = _existing(session, _tenant_id(tenant_id))
        credentials = get_credentials(session, tenant.tenant_id, META_PROVIDER)
        if credentials is None:
            raise click.ClickException(
                f"tenant {tenant_id} has no Meta credentials: set them with "
                f"`capi tenants set-meta {tenant_id} --pixel-id ... --access-token ...`"
            )
        stored = credentials.get("verify_test_event_code") or credentials.get("test_event_code")
        code = (test_event_code or "").strip() or (stored if isinstance(stored, str) else "")
        if not code:
            raise click.UsageError(
                "give --test-event-code (Events Manager > your pixel > Test events shows it); "
                "--save stores it for next time"
            )
        if save and test_event_code:
            upsert_integration(
                session, tenant.tenant_id, META_PROVIDER, {"verify_test_event_code": code}
            )
    graph_url = credentials.get("graph_url")
    try:
        client = MetaCAPIClient.from_tenant(
            credentials,
            test_event_code=code,
            graph_url=graph_url if isinstance(graph_url, str) else settings.meta_graph_url,
            api_version=settings.meta_api_version,
            timeout_seconds=settings.meta_timeout_seconds,
            partner_agent=settings.meta_partner_agent,
        )
    except CapiError as exc:
        raise click.ClickException(f"{exc}: `capi tenants set-meta {tenant_id} ...`") from exc
    answer: SendResult | CapiError
    with client:
        click.echo(f"sending one test event to pixel {client.pixel_id} at {client.graph_url} ...")
        try:
            answer = client.send_event(build_verify_event(datetime.now(UTC)))
        except CapiError as exc:
            answer = exc
    verdict = judge_answer(tenant_id, client.pixel_id, code, answer)
    click.echo(verdict.message, err=not verdict.ok)
    if not verdict.ok:
        sys.exit(1)


@tenants.command("rotate-key")
@click.pass_context
def rotate_key(ctx: click.Context) -> None:
    """Re-encrypt every stored credential with the first key of CAPI_SECRETS_KEY.

    Rotation: set CAPI_SECRETS_KEY=new,old everywhere, run this, then drop the old key.
    All rows are re-encrypted in one transaction: a row no key opens changes nothing.
    """
    with _session(ctx) as session:
        count = reseal_integrations(session)
    click.echo(f"re-encrypted {count} integration(s) with the first key of CAPI_SECRETS_KEY")


@tenants.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key for CAPI_SECRETS_KEY (put it first, keep the old ones after)."""
    click.echo(generate_key())
