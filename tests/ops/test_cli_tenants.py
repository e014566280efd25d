"""`capi tenants`: validation, storage and masking, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy.orm import Session, sessionmaker

from ops.cli import cli
from ops.cli.tenants_command import mask
from storage.tenants import get_credentials, get_tenant

TOKEN = "EAAB-fake-test-token-not-a-secret-9xQ"
WHSEC = "whsec_0123456789abcdefSECRET"


def invoke(db_url: str, *args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["tenants", *args], env={"DATABASE_URL": db_url}, input=stdin)


def ok(db_url: str, *args: str, stdin: str | None = None) -> str:
    result = invoke(db_url, *args, stdin=stdin)
    assert result.exit_code == 0, result.output
    return result.output


def pem(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return raw.decode()


def test_mask_never_reveals_a_secret() -> None:
    assert mask(TOKEN) == "EAAB…9xQ"
    assert mask("demo-shared-secret-1234") == "****"
    assert mask(WHSEC) == "whse…RET"


def test_add_validates_and_stores(db_url: str, session_factory: sessionmaker[Session]) -> None:
    out = ok(db_url, "add", "--name", "Acme GmbH", "--default-country", "de")
    tenant_id = uuid.UUID(out.split()[2])
    fixed = uuid.uuid4()
    ok(db_url, "add", "--name", "Beta", "--id", str(fixed))
    with session_factory() as session:
        acme = get_tenant(session, tenant_id)
        assert acme is not None and (acme.name, acme.default_country) == ("Acme GmbH", "DE")
        assert get_tenant(session, fixed) is not None

    for args, message in [
        (("--name", "X", "--default-country", "XX"), "alpha-2"),
        (("--name", "X", "--default-country", "DEU"), "alpha-2"),
        (("--name", "X", "--id", "not-a-uuid"), "UUID"),
        (("--name", "Beta", "--id", str(fixed)), "exists already"),
        (("--name", "  "), "must not be empty"),
    ]:
        result = invoke(db_url, "add", *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert str(fixed) in ok(db_url, "list") and "Acme GmbH" in ok(db_url, "list")


def test_set_meta_validates_and_show_masks(
    db_url: str, session_factory: sessionmaker[Session]
) -> None:
    tenant = ok(db_url, "add", "--name", "Acme").split()[2]
    bad_pixel = invoke(db_url, "set-meta", tenant, "--pixel-id", "12ab", "--access-token", "t")
    assert bad_pixel.exit_code != 0 and "digits" in bad_pixel.output
    empty = invoke(db_url, "set-meta", tenant, "--pixel-id", "123", "--access-token", " ")
    assert empty.exit_code != 0 and "must not be empty" in empty.output
    stranger = str(uuid.uuid4())
    unknown = invoke(db_url, "set-meta", stranger, "--pixel-id", "1", "--access-token", "t")
    assert unknown.exit_code != 0 and "no tenant" in unknown.output

    # The token is prompted for (hidden) when not given on the command line.
    out = ok(
        db_url,
        "set-meta",
        tenant,
        "--pixel-id",
        "1234567890",
        "--test-event-code",
        "TEST123",
        stdin=f"{TOKEN}\n",
    )
    assert TOKEN not in out
    with session_factory() as session:
        stored = get_credentials(session, uuid.UUID(tenant), "meta")
    assert stored == {
        "pixel_id": "1234567890",
        "capi_access_token": TOKEN,
        "test_event_code": "TEST123",
    }

    ok(db_url, "set-secret", tenant, "stripe", "--webhook-secret", WHSEC)
    shown = ok(db_url, "show", tenant)
    assert TOKEN not in shown and WHSEC not in shown
    assert "EAAB…9xQ" in shown and "1234567890" in shown and "TEST123" in shown
    assert "meta.capi_access_token" in shown and "stripe.webhook_secret" in shown


def test_set_secret_per_source(
    db_url: str, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    tenant = ok(db_url, "add", "--name", "Acme").split()[2]
    ed_key = pem(ed25519.Ed25519PrivateKey.generate())
    rsa_key = pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    key_file = tmp_path / "ghl.pem"
    key_file.write_text(ed_key)

    for args, message in [
        (("stripe", "--webhook-secret", "sk_test_nope"), "whsec_"),
        (("stripe",), "needs --webhook-secret"),
        (("stripe", "--secret", "x", "--webhook-secret", WHSEC), "takes no --secret"),
        (("ghl",), "at least one of"),
        (("ghl", "--public-key-ed25519", rsa_key), "Ed25519PublicKey"),
        (("ghl", "--public-key-rsa", "-----BEGIN PUBLIC KEY-----\nxx"), "not a PEM"),
        (("chatbot",), "needs --secret"),
        (("nosuch", "--secret", "x"), "nosuch"),
    ]:
        result = invoke(db_url, "set-secret", tenant, *args)
        assert result.exit_code != 0 and message in result.output, (args, result.output)

    ok(
        db_url,
        "set-secret",
        tenant,
        "ghl",
        "--public-key-ed25519",
        f"@{key_file}",
        "--public-key-rsa",
        rsa_key,
        "--workflow-secret",
        "wf-secret-value-123",
    )
    for source in ("chatbot", "perspective", "denefits"):
        ok(db_url, "set-secret", tenant, source, "--secret", f"{source}-shared-secret")
    with session_factory() as session:
        ghl = get_credentials(session, uuid.UUID(tenant), "ghl")
        chatbot = get_credentials(session, uuid.UUID(tenant), "chatbot")
    assert ghl == {
        "public_key_ed25519": ed_key.strip(),
        "public_key_rsa": rsa_key.strip(),
        "workflow_secret": "wf-secret-value-123",
    }
    assert chatbot == {"secret": "chatbot-shared-secret"}
    shown = ok(db_url, "show", tenant)
    assert "chatbot-shared-secret" not in shown and "wf-secret-value-123" not in shown


@pytest.mark.parametrize("command", ["show", "set-meta"])
def test_unknown_tenant_id_is_a_clear_error(db_url: str, command: str) -> None:
    result = invoke(db_url, command, "not-a-uuid", "--pixel-id", "1", "--access-token", "t")
    if command == "show":
        result = invoke(db_url, "show", "not-a-uuid")
    assert result.exit_code != 0 and "UUID" in result.output
