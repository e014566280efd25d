"""`capi pixel-snippet` and `capi pixel-origins`: run the browser pixel beside capi-stream.

``pixel-snippet`` prints the thank-you page code of one tenant and source: it loads
``capi-pixel.js`` from ``capi serve``, reads the page key from the URL, asks the server for
the event id and (Stripe) the external_id, and fires ``fbq('track', <event>, {...},
{eventID})`` with the id the server sends, so Meta counts the conversion once.
``pixel-origins`` sets the page origins allowed to call the lookup endpoint.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.table import Table

from capi_stream.database import build_session_factory
from capi_stream.pixel import PIXEL_PROVIDER, PIXEL_SCHEMES, allowed_origins, scheme_for
from capi_stream.runtime import build_secrets, open_database, resolve_settings
from capi_stream.settings import CapiSettings
from storage.tenants import META_PROVIDER, get_credentials, get_tenant, upsert_integration


@dataclass(frozen=True, slots=True)
class PageKey:
    """Where the thank-you page finds its key: URL parameters, tried in order."""

    params: tuple[str, ...]
    where: str  # one line for the page owner


PAGE_KEYS: dict[str, PageKey] = {
    "stripe": PageKey(
        ("session_id", "payment_intent"),
        "Checkout/Payment Links: success_url ...?session_id={CHECKOUT_SESSION_ID}; "
        "Payment Element: Stripe adds payment_intent to the return_url",
    ),
    "denefits": PageKey(("contract_code",), "redirect with ?contract_code=<the contract code>"),
    "perspective": PageKey(
        ("perspective_key",),
        "?perspective_key=<funnelId>:<contact id>, or build it with "
        "capiPixel.perspectiveEmailPerson(email)",
    ),
    "ghl": PageKey(("appointment_id",), "booking redirect with ?appointment_id={{appointment.id}}"),
    "chatbot": PageKey(("subscriber_id",), "link from the flow with ?subscriber_id={{user_id}}"),
}


def render_snippet(tenant_id: uuid.UUID, source: str, pixel_id: str, server_url: str) -> str:
    """The thank-you page code for ``tenant_id`` and ``source``."""
    scheme = scheme_for(source)
    page = PAGE_KEYS[source]
    server = server_url.rstrip("/")
    params = json.dumps(list(page.params))
    value_hint = (
        ""
        if scheme.event_name in {"Lead", "AddToCart"}
        else ('value: 0.00, currency: "USD" /* this order\'s total and currency */')
    )
    return f"""<!-- capi-stream + Meta pixel: {scheme.event_name} from {source}, counted once.
     The page key: {page.where}.
     Put this in place of the base code's fbq('init', ...) and fbq('track', 'PageView'):
     the init below adds the external_id capi-stream sends (advanced matching). -->
<script src="{server}/pixel/capi-pixel.js"></script>
<script>
(function () {{
  var query = new URLSearchParams(window.location.search);
  var key = {params}.map(function (p) {{ return query.get(p); }}).filter(Boolean)[0];
  if (!key) {{ fbq("init", "{pixel_id}"); fbq("track", "PageView"); return; }}
  capiPixel.lookup("{server}", "{tenant_id}", "{source}", key).then(function (ids) {{
    fbq("init", "{pixel_id}", ids.external_id ? {{external_id: ids.external_id}} : {{}});
    fbq("track", "PageView");
    fbq("track", "{scheme.event_name}", {{{value_hint}}}, {{eventID: ids.event_id}});
  }});
}})();
</script>"""


@click.command("pixel-snippet")
@click.option("--tenant", "tenant_id", required=True, help="Tenant UUID.")
@click.option(
    "--source", required=True, type=click.Choice(sorted(PIXEL_SCHEMES)), help="Webhook source."
)
@click.option(
    "--server-url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The public URL of `capi serve` as the page reaches it.",
)
def pixel_snippet(tenant_id: str, source: str, server_url: str) -> None:
    """Print the pixel code for the tenant's thank-you page (same event_id as the server)."""
    tenant = _tenant(tenant_id)
    settings = resolve_settings(CapiSettings())
    engine = open_database(settings)
    try:
        with build_session_factory(engine, build_secrets(settings))() as session:
            if get_tenant(session, tenant) is None:
                raise click.ClickException(f"unknown tenant {tenant}")
            meta = get_credentials(session, tenant, META_PROVIDER) or {}
            origins = allowed_origins(get_credentials(session, tenant, PIXEL_PROVIDER))
    finally:
        engine.dispose()
    pixel_id = str(meta.get("pixel_id") or "")
    if not pixel_id:
        raise click.ClickException("no Meta pixel set: capi tenants set-meta first")
    click.echo(render_snippet(tenant, source, pixel_id, server_url))
    if not origins:
        click.echo(
            "\nnote: no page origin allowed yet; run "
            f"`capi pixel-origins --tenant {tenant} --add https://your-shop.example`",
            err=True,
        )


@click.command("pixel-origins")
@click.option("--tenant", "tenant_id", required=True, help="Tenant UUID.")
@click.option("--add", "added", multiple=True, help="Allow this origin (https://host[:port]).")
@click.option("--remove", "removed", multiple=True, help="Stop allowing this origin.")
def pixel_origins(tenant_id: str, added: tuple[str, ...], removed: tuple[str, ...]) -> None:
    """List, add or remove the page origins allowed to call the pixel endpoints (CORS)."""
    tenant = _tenant(tenant_id)
    for origin in added:
        parts = urlsplit(origin.strip())
        plain = parts.path in ("", "/") and not (parts.query or parts.fragment)
        if parts.scheme not in ("https", "http") or not parts.netloc or not plain:
            raise click.BadParameter(f"{origin!r} is not an origin", param_hint="--add")
    settings = resolve_settings(CapiSettings())
    engine = open_database(settings)
    try:
        with build_session_factory(engine, build_secrets(settings)).begin() as session:
            if get_tenant(session, tenant) is None:
                raise click.ClickException(f"unknown tenant {tenant}")
            current = allowed_origins(get_credentials(session, tenant, PIXEL_PROVIDER))
            wanted = (current | allowed_origins({"allowed_origins": list(added)})) - (
                allowed_origins({"allowed_origins": list(removed)})
            )
            if added or removed:
                upsert_integration(
                    session, tenant, PIXEL_PROVIDER, {"allowed_origins": sorted(wanted)}
                )
    finally:
        engine.dispose()
    for origin in sorted(wanted):
        click.echo(origin)


def _tenant(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter("not a UUID", param_hint="--tenant") from None


def print_pixel_readiness(console: Console, rows: list[dict[str, Any]]) -> None:
    """The ``capi status`` section: can the pixel deduplicate against what was sent?"""
    table = Table(title="pixel + server (events sent in the last 7 days)")
    for column in ("tenant id", "event", "sent", "fbp", "external_id", "reproducible event_id"):
        table.add_column(column)
    for row in rows:
        share = row["share"]
        table.add_row(
            row["tenant_id"],
            row["event_name"],
            str(row["sent"]),
            f"{share['fbp']:.0%}",
            f"{share['external_id']:.0%}",
            f"{share['reproducible_event_id']:.0%}",
        )
    console.print(table)
