"""JSON views of directory objects for the control API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from emulators.msgraph.directory import Tenant, User


def tenant_json(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.id,
        "name": tenant.name,
        "domain": tenant.domain,
        "personal": tenant.personal,
        "policy": asdict(tenant.policy),
    }


def user_json(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "tenant_id": user.tenant_id,
        "user_principal_name": user.user_principal_name,
        "display_name": user.display_name,
        "mail": user.mail,
        "teams_licence": user.teams_licence,
        "time_zone": user.time_zone,
    }
