"""The end of livekit's native runtime (``appliance.hw.audio.webrtc`` loads it), without
importing it: this module is imported where the process ends, on counters with or without
the audio chain."""

from __future__ import annotations

import sys


def release_native_runtime() -> None:
    """Stop livekit's native runtime now, if it was started, while Python is still whole.

    livekit stops it from an ``atexit`` hook, during interpreter finalization, where one of
    its tokio threads calling back into Python (log forwarding) was seen to abort the
    process ("panic in a function that cannot unwind") after a clean run. Called at the
    end of the counter's process and of the test session; its own hook then does nothing.
    """
    client_module = sys.modules.get("livekit.rtc._ffi_client")
    if client_module is None:
        return  # never loaded
    client = getattr(client_module.FfiClient, "_instance", None)
    if client is not None:
        client._dispose()  # the SDK's own shutdown; idempotent
