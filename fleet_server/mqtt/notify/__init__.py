"""Notifications of alerts by e-mail and webhook (``docs/notifications.md``).

:mod:`.outbox` writes one delivery row per (alert event, target) in the transaction that
raises or clears the alert; :mod:`.worker` sends them (:mod:`.mail`, :mod:`.webhook`) with
retries and backoff; :mod:`.targets` is what an administrator sets; :mod:`.quiet` says when a
target's quiet hours end; :mod:`.vocab` holds the words, with their French labels.
"""
