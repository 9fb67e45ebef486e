"""TLS for ``mqtts://`` (the broker's CA, the counter's client certificate) and for the fleet
server's ``https://``/``wss://`` (enrolment, signalling): the same CA, the Pays's own when
``[fleet.tls] ca_file`` names it (first boot writes it from ``guichet.toml``).

Loading certificates reads files, so the link builds this context once, in a thread.
``insecure_skip_verify`` exists for a bench broker with a self-signed certificate; it
disables both the chain and the host name checks and must never ship in an image.
"""

from __future__ import annotations

import ssl

from appliance.config import TlsSection


def _verifying(tls: TlsSection) -> ssl.SSLContext:
    """Python's default client context on the given CA (or the system's), with strict X.509
    checks on every Python version: Python 3.13 (the image's) turns them on by default, so a
    CA without ``keyUsage`` or a certificate without its authority key id fails there — the
    tests (Python 3.11) must fail the same way."""
    cafile = str(tls.ca_file) if tls.ca_file is not None else None
    context = ssl.create_default_context(cafile=cafile)
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    return context


def tls_context(tls: TlsSection) -> ssl.SSLContext:
    """The TLS context for ``mqtts://``: system CAs unless a CA file is given."""
    context = _verifying(tls)
    if tls.cert_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def https_context(tls: TlsSection) -> ssl.SSLContext:
    """The TLS context for the fleet server's HTTPS and WSS: the same CA, no client cert."""
    return _verifying(tls)
