"""Tests that must run in a loopback-only network namespace (WebRTC between Chromium and
aiortc over 127.0.0.1, see RECIPES). ``tests/e2e/test_netns.py`` runs them there; a plain
``pytest`` run does not collect them directly."""
