"""Who may open which page, and whether the app may serve the address it was given.

Pure (no Streamlit, no SQLite): the pages ask :func:`can_open` after the store has told
them the visitor's role in the project, and ``app.py`` asks :func:`serving_problem` before
it serves anything. Page ids are the stems of the files in ``views/``.
"""
from __future__ import annotations

import ipaddress

ROLES = ("owner", "reviewer")

PAGES = ("home", "labels", "data", "annotate", "review", "distill", "predictions", "export",
         "predict", "agreement")

# Reviewers label texts (the Review page, queue and audit modes) and see the project's
# status and their own decisions; everything that changes the project, spends money or
# takes data or models away is the owners'.
_REVIEWER_PAGES = frozenset({"home", "review"})

ALLOW_OPEN_ENV = "CANDIST_ALLOW_OPEN"


def can_open(role: str | None, page: str) -> bool:
    """Whether a member with ``role`` in a project may open ``page`` (a ``views/`` stem).

    ``None`` (not a member) opens nothing; owners open every page. Raises ``ValueError``
    for a page id or role this module does not know, so a new page cannot be left out
    of the table by accident.
    """
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}; known: {', '.join(PAGES)}")
    if role is None:
        return False
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return role == "owner" or page in _REVIEWER_PAGES


def pages_for(role: str | None) -> list[str]:
    """The pages ``role`` may open, in navigation order."""
    return [page for page in PAGES if can_open(role, page)]


def is_loopback(address: str | None) -> bool:
    """Whether a ``server.address`` serves this machine only.

    Unset or empty is *not* loopback: Streamlit then binds every interface. A Unix
    socket (``unix://...``) is local. Host names other than ``localhost`` are not
    resolved (a name can point anywhere), so they count as open.
    """
    if not address:
        return False
    address = address.strip()
    if address.startswith("unix://"):
        return True
    if address.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def serving_problem(address: str | None, *, sign_in_configured: bool,
                    allow_open: bool) -> str | None:
    """The warning for serving ``address``, or ``None`` when nothing is wrong.

    Loopback, or any address with sign-in configured, is fine. Otherwise anyone who can
    reach the machine could read and change every project: the app refuses to serve
    unless ``allow_open`` (``CANDIST_ALLOW_OPEN=1``), and then still shows this text as a
    warning.
    """
    if sign_in_configured or is_loopback(address):
        return None
    where = f"address {address!r}" if address else "every network interface (server.address unset)"
    text = (f"CanDist Studio is served on {where} without sign-in: anyone who can reach "
            f"this machine can read and change every project.")
    if allow_open:
        return text + f" ({ALLOW_OPEN_ENV}=1 allows this.)"
    return (text + " Refusing to serve. Configure sign-in in .streamlit/secrets.toml "
            "(README, \"Serving a team\"), or serve 127.0.0.1 only, or set "
            f"{ALLOW_OPEN_ENV}=1 to serve it open anyway.")
