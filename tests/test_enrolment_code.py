"""The short code of an enrolment request: the same from the secret or from its hash."""

from __future__ import annotations

import hashlib

from guichet.enrolment_code import ALPHABET, LENGTH, code_from_digest, short_code


def test_the_code_is_the_same_on_both_sides_and_unambiguous() -> None:
    poll = "gpp_" + "x" * 43
    code = short_code(poll)
    assert code == code_from_digest(hashlib.sha256(poll.encode()).hexdigest())  # the server's
    assert len(code) == LENGTH
    assert set(code) <= set(ALPHABET)
    assert not set(ALPHABET) & set("0O1IL2Z5S8BUV")
    codes = {short_code(f"gpp_{i}") for i in range(2000)}
    assert len(codes) > 1990  # two boxes pending together do not share one
