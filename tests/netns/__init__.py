"""Tests that must run in a network namespace of their own: WebRTC between Chromium and
aiortc over 127.0.0.1 in a loopback-only namespace, and calls through the shaped rural line
(``tests/support/shaped``, ``docs/rural-network.md``), whose namespaces are made from there.
``tests/e2e/test_netns.py`` runs them, and its docstring says why; a plain ``pytest`` run
does not collect them directly."""
