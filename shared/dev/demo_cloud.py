"""The demo's Microsoft cloud: a tenant, a manager, two team members and SMVue's app
registration in the emulator, created once through its control API (kept in its state file).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

DEMO_DOMAIN = "contoso.example"
DEMO_CLIENT_ID = "5b0f5c5e-0d6a-4c38-9a57-2f3f2b7d0c11"
DEMO_CLIENT_SECRET = "local-demo-client-secret"  # noqa: S105 (the emulator's demo app only)
DEMO_USERS = (
    ("ada.manager@contoso.example", "Ada Manager"),
    ("ben.member@contoso.example", "Ben Member"),
    ("cy.member@contoso.example", "Cy Member"),
)
# A personal Microsoft account (Outlook.com, the consumers tenant), as the help page
# supports: the demo can connect it too ("Wrong Account Connected" is this account).
DEMO_PERSONAL = ("ada.home@outlook.example", "Ada (personal)")


@dataclass(frozen=True)
class DemoCloud:
    tenant_id: str
    client_id: str
    client_secret: str


async def ensure_demo_cloud(control: httpx.AsyncClient, redirect_uri: str) -> DemoCloud:
    """Idempotent: reuses what a previous run (state file) already created."""
    tenants = (await control.get("/_emulator/tenants")).json()
    tenant = next((t for t in tenants if t.get("domain") == DEMO_DOMAIN), None)
    if tenant is None:
        response = await control.post(
            "/_emulator/tenants", json={"name": "Contoso (demo)", "domain": DEMO_DOMAIN}
        )
        response.raise_for_status()
        tenant = response.json()
    users = {u["mail"].lower() for u in (await control.get("/_emulator/users")).json()}
    wanted = [(tenant["id"], email, name) for email, name in DEMO_USERS]
    wanted.append(("consumers", *DEMO_PERSONAL))
    for tenant_id, email, name in wanted:
        if email not in users:
            response = await control.post(
                "/_emulator/users",
                json={"tenant": tenant_id, "email": email, "display_name": name},
            )
            response.raise_for_status()
    apps = (await control.get("/_emulator/apps")).json()
    if not any(a.get("client_id") == DEMO_CLIENT_ID for a in apps):
        response = await control.post(
            "/_emulator/apps",
            json={
                "display_name": "SMVue (local demo)",
                "client_id": DEMO_CLIENT_ID,
                "client_secret": DEMO_CLIENT_SECRET,
                "redirect_uris": [redirect_uri],
            },
        )
        response.raise_for_status()
    return DemoCloud(str(tenant["id"]), DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
