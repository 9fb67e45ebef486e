"""Uptake statistics per site, service and month."""
