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


def tls_context(tls: TlsSection) -> ssl.SSLContext:
    """The TLS context for ``mqtts://``: system CAs unless a CA file is given."""
    cafile = str(tls.ca_file) if tls.ca_file is not None else None
    context = ssl.create_default_context(cafile=cafile)
    if tls.cert_file is not None:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def https_context(tls: TlsSection) -> ssl.SSLContext:
    """The TLS context for the fleet server's HTTPS and WSS: the same CA, no client cert."""
    cafile = str(tls.ca_file) if tls.ca_file is not None else None
    return ssl.create_default_context(cafile=cafile)
