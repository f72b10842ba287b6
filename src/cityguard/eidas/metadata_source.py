"""Reads the node's SAML metadata from where the realm file says: a file or an http(s) URL.

The edge between a realm file and the metadata parser: a file relative to the realm file, or a
URL fetched once per command (when the realm file is loaded), with a short timeout so a node
that does not answer cannot hold a command up, and only over https (plain http on loopback
only, through no proxy), redirects included. Whatever goes wrong is one sentence that names
the file or URL, raised as a MetadataError.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from http.client import HTTPMessage
from pathlib import Path
from typing import IO

from cityguard.eidas.metadata import MAX_BYTES, MetadataError
from cityguard.eidas.settings import is_loopback_url
from cityguard.eidas.uris import secure_url, url_problem

#: Seconds to wait for the node's metadata (connect, and each read)
FETCH_TIMEOUT_S = 10.0
#: SAML metadata's own media type first; servers that know only XML (Keycloak's descriptor
#: answers 406 to the metadata type alone) serve it as application/xml
ACCEPT = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8"


def read_file(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise MetadataError([f"file not found: {path}"]) from None
    except OSError as error:
        raise MetadataError([f"cannot read {path}: {error.strerror or error}"]) from None
    return _bounded(data)


def fetch(url: str, timeout_s: float = FETCH_TIMEOUT_S) -> bytes:
    """The body the URL answers with (HTTP 200); MetadataError naming the URL otherwise."""
    if not secure_url(url):
        raise MetadataError([f"cannot fetch {url}: {url_problem()}"])
    handlers: list[urllib.request.BaseHandler] = [_SecureRedirects()]
    if is_loopback_url(url):
        handlers.append(urllib.request.ProxyHandler({}))  # loopback never through a proxy
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"Accept": ACCEPT})
    try:
        with opener.open(request, timeout=timeout_s) as answer:
            data: bytes = answer.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as error:
        raise MetadataError([f"cannot fetch {url}: HTTP {error.code} {error.reason}"]) from None
    except urllib.error.URLError as error:
        raise MetadataError([f"cannot fetch {url}: {_reason(error.reason, timeout_s)}"]) from None
    except (TimeoutError, OSError) as error:
        raise MetadataError([f"cannot fetch {url}: {_reason(error, timeout_s)}"]) from None
    return _bounded(data)


def _bounded(data: bytes) -> bytes:
    if len(data) > MAX_BYTES:
        raise MetadataError([f"larger than {MAX_BYTES // (1024 * 1024)} MiB; not read"])
    return data


def _reason(reason: object, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason)


class _SecureRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL the first one could have been (https, loopback http)."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if not secure_url(newurl):
            raise MetadataError(
                [f"cannot fetch {req.full_url}: redirected to {newurl}, not https://"]
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)
