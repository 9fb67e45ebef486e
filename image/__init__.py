"""The counter's SD-card image: its declarative description, builder and boot check."""
