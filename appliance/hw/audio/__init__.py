"""Sound for the call through PyAV (``pyav``: ALSA/PulseAudio microphone and loudspeaker,
lavfi test tone)."""
