"""CUPS (pycups): the printer adapter (``printer``) and the pure mapping from a queue's IPP
attributes to the contract's ``PrinterState`` (``status``), shared with the fake printer."""
