"""--state FILE: tenants, users, apps, refresh tokens and subscriptions survive a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from emulators.msgraph import persistence
from emulators.msgraph.directory import TenantPolicy
from emulators.msgraph.state import EmulatorState
from emulators.msgraph.subscriptions.models import Subscription


def test_round_trip(tmp_path: Path) -> None:
    before = EmulatorState()
    tenant = before.directory.add_tenant(
        "Contoso", "contoso.com", policy=TenantPolicy(grantable_scopes=["Calendars.Read"])
    )
    user = before.directory.add_user(tenant.id, "ann@contoso.com", "Ann", time_zone="Europe/Paris")
    app = before.identity.register_app(redirect_uris=["https://app.test/cb"])
    before.subscriptions.subscriptions["s1"] = Subscription(
        id="s1",
        resource="me/events",
        mailbox_user_id=user.id,
        tenant_id=tenant.id,
        change_type="created",
        notification_url="https://app.test/n",
        expiration=before.clock.now() + timedelta(days=1),
        application_id=app.client_id,
        creator_id=user.id,
        client_state="cs",
    )
    token = before.identity.mint_access_token(user.id)
    path = tmp_path / "state.json"
    persistence.save_file(before, path)
    after = EmulatorState()
    assert persistence.load_file(after, path)
    assert after.directory.find_user("ann@contoso.com") is not None
    assert after.directory.tenants[tenant.id].policy.grantable_scopes == ["Calendars.Read"]
    assert after.identity.apps[app.client_id].client_secret == app.client_secret
    assert after.subscriptions.subscriptions["s1"].client_state == "cs"
    assert after.token_verifier.verify(token).user_id == user.id


def test_moves_and_id_forms_survive_a_restart(tmp_path: Path) -> None:
    """A default id stays what it was after the event's moves, across a restart."""
    before = EmulatorState()
    tenant = before.directory.add_tenant("Contoso", "contoso.com")
    user = before.directory.add_user(tenant.id, "ann@contoso.com", "Ann")
    body = {
        "subject": "1:1",
        "start": {"dateTime": "2030-03-04T09:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2030-03-04T09:30:00", "timeZone": "UTC"},
    }
    event, _ = before.calendars.create(user, body)
    before.calendars.move(user.id, event.id)
    moved_id = before.event_id_as(event.id, immutable=False)
    before.subscriptions.subscriptions["s1"] = Subscription(
        id="s1",
        resource="me/events",
        mailbox_user_id=user.id,
        tenant_id=tenant.id,
        change_type="created",
        notification_url="https://app.test/n",
        expiration=before.clock.now() + timedelta(days=1),
        application_id="app",
        creator_id=user.id,
        immutable_ids=True,
    )
    path = tmp_path / "state.json"
    persistence.save_file(before, path)
    after = EmulatorState()
    assert persistence.load_file(after, path)
    assert after.event_id_as(event.id, immutable=False) == moved_id != event.id
    assert after.subscriptions.subscriptions["s1"].immutable_ids is True
