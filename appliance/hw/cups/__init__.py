"""CUPS (pycups): the printer adapter (``printer``). How a queue's IPP attributes become the
contract's ``PrinterState`` is pure code shared with the fake printer, so it lives with the
port (``appliance.hw.ports.printer_status``)."""
