"""SANE (python-sane): the scanner adapter (``scanner``: devices, health, scanning) and the
blocking scan itself (``scan``: options, pages, SANE errors in French)."""
