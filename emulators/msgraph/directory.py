"""Tenants and users: who exists in the emulated Microsoft cloud."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

# The well-known tenant id of personal Microsoft accounts (Outlook.com, Hotmail...).
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"


@dataclass
class TenantPolicy:
    """Per-tenant behaviours that reproduce documented sign-in failures."""

    admin_consent_required: bool = False  # AADSTS65001 / AADSTS90094
    conditional_access_block: bool = False  # AADSTS53003
    # Scopes users of this tenant may grant; None = anything asked. Fewer → partial grant.
    grantable_scopes: list[str] | None = None


@dataclass
class Tenant:
    id: str
    name: str
    domain: str
    personal: bool = False
    policy: TenantPolicy = field(default_factory=TenantPolicy)


@dataclass
class User:
    id: str
    tenant_id: str
    user_principal_name: str
    display_name: str
    mail: str
    teams_licence: bool = True
    time_zone: str = "UTC"
    password: str | None = None  # the sign-in page accepts any account picked unless set

    @property
    def email(self) -> str:
        return self.mail


class Directory:
    """All tenants and users. Lookups of users are case-insensitive by UPN or mail."""

    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.users: dict[str, User] = {}
        consumers = Tenant(
            id=CONSUMERS_TENANT_ID, name="Microsoft Accounts", domain="outlook.com", personal=True
        )
        self.tenants[consumers.id] = consumers

    def add_tenant(
        self,
        name: str,
        domain: str,
        tenant_id: str | None = None,
        policy: TenantPolicy | None = None,
    ) -> Tenant:
        tenant = Tenant(
            id=tenant_id or str(uuid.uuid4()),
            name=name,
            domain=domain.lower(),
            policy=policy or TenantPolicy(),
        )
        self.tenants[tenant.id] = tenant
        return tenant

    def add_user(
        self,
        tenant_id: str,
        email: str,
        display_name: str,
        *,
        teams_licence: bool = True,
        time_zone: str = "UTC",
        user_id: str | None = None,
    ) -> User:
        if tenant_id not in self.tenants:
            raise KeyError(f"unknown tenant {tenant_id}")
        if self.find_user(email) is not None:
            raise ValueError(f"a user with address {email} already exists")
        user = User(
            id=user_id or str(uuid.uuid4()),
            tenant_id=tenant_id,
            user_principal_name=email.lower(),
            display_name=display_name,
            mail=email,
            teams_licence=teams_licence,
            time_zone=time_zone,
        )
        self.users[user.id] = user
        return user

    def find_user(self, id_or_address: str) -> User | None:
        """A user by object id, userPrincipalName or mail (case-insensitive)."""
        if id_or_address in self.users:
            return self.users[id_or_address]
        wanted = id_or_address.lower()
        for user in self.users.values():
            if wanted in (user.user_principal_name, user.mail.lower()):
                return user
        return None

    def tenant_of(self, user: User) -> Tenant:
        return self.tenants[user.tenant_id]

    def resolve_tenant(self, segment: str) -> Tenant | None:
        """The `{tenant}` path segment: a tenant id, a domain, or common/organizations/consumers."""
        for tenant in self.tenants.values():
            if segment.lower() in (tenant.id, tenant.domain):
                return tenant
        return None
