"""Builds the counter's SD-card image from the declarative description in ``image/``.

``image.toml`` lists the layers; each ``layers/<name>/layer.toml`` declares packages, files,
hooks, units and writable paths (``model``). The build has three stages, each planned as a
list of steps before it runs (``steps``): ``base`` (mmdebstrap, cached), ``project`` (the
project's venv and the layers' files on a copy of the base) and ``assemble`` (partitions,
disk image, xz, checksum, manifest). ``./run image`` calls ``python -m image.builder build``.
"""
