"""Which URLs and URIs a realm file may name (pure), shared by the model and the node's values.

The same rule holds wherever a URL the broker relies on comes from (typed into the realm file,
found in the node's metadata, or where that metadata is fetched): https, or plain http only on
loopback (tests, the demo), since over plain http anyone on the path could swap the node's
certificate or send citizens elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from cityguard.eidas.settings import is_loopback_url


def secure_url(value: str) -> bool:
    """An absolute https URL, or http on loopback."""
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback_url(value)


def url_problem(what: str = "URL") -> str:
    return f"must be an absolute https:// {what} (http:// only on loopback)"


def is_entity_id(value: str) -> bool:
    """A SAML entity id: an absolute URI (a URL, or a URN)."""
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.scheme == "urn"))
