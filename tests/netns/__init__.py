"""Tests that must run in a loopback-only network namespace (WebRTC between Chromium and
aiortc over 127.0.0.1). ``tests/e2e/test_netns.py`` runs them there, and its docstring says
why; a plain ``pytest`` run does not collect them directly."""
