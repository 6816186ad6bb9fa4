"""The sign-in + consent page and the error page, as small self-contained HTML.

The consent form is plain HTML so an HTTP client can drive it: POST the same URL
(`/{tenant}/oauth2/v2.0/authorize`) with the hidden fields echoed back, `account` (a user
id, UPN or mail) and `action` = `accept` or `cancel`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

from emulators.msgraph.directory import User

_STYLE = (
    "body{font-family:Segoe UI,Arial,sans-serif;background:#f2f2f2;margin:0}"
    ".card{background:#fff;max-width:440px;margin:60px auto;padding:32px;"
    "box-shadow:0 2px 6px rgba(0,0,0,.2)}"
    "h1{font-size:22px;font-weight:600}label{display:block;margin:6px 0}"
    "button{padding:8px 24px;margin:12px 8px 0 0}.err{color:#a80000}"
)

# The authorize parameters the consent form carries back on POST.
FORWARDED_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "login_hint",
)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><div class='card'>{body}</div></body></html>"
    )


def consent_page(
    *,
    action_url: str,
    app_name: str,
    accounts: Iterable[User],
    scopes: Iterable[str],
    params: Mapping[str, str],
) -> str:
    """Pick an account, review the permissions, Accept or Cancel."""
    hint = params.get("login_hint", "").lower()
    radios = []
    for index, user in enumerate(accounts):
        checked = hint in (user.user_principal_name, user.mail.lower()) or (not hint and index == 0)
        radios.append(
            f"<label><input type='radio' name='account' value='{escape(user.id)}'"
            f"{' checked' if checked else ''}> {escape(user.display_name)} "
            f"&lt;{escape(user.user_principal_name)}&gt;</label>"
        )
    hidden = "".join(
        f"<input type='hidden' name='{name}' value='{escape(params[name])}'>"
        for name in FORWARDED_FIELDS
        if params.get(name)
    )
    permissions = "".join(f"<li>{escape(scope)}</li>" for scope in scopes)
    body = (
        "<h1>Sign in</h1><p>Pick an account</p>"
        f"<form method='post' action='{escape(action_url)}'>{hidden}"
        f"{''.join(radios) or '<p class=err>No accounts in this directory.</p>'}"
        f"<h1>Permissions requested</h1><p>{escape(app_name)} would like to:</p>"
        f"<ul>{permissions}</ul>"
        "<button type='submit' name='action' value='accept'>Accept</button>"
        "<button type='submit' name='action' value='cancel'>Cancel</button>"
        "</form>"
    )
    return _page("Sign in to your account", body)


def error_page(message: str) -> str:
    """Errors that must not be redirected (unknown app, unregistered redirect URI, tenant)."""
    body = (
        "<h1>Sorry, but we're having trouble signing you in.</h1>"
        f"<p class='err'>{escape(message)}</p>"
    )
    return _page("Sign in to your account", body)
