"""The counters' MQTT side: ingest, storage, health checks, alert rules, config push, broker
files, and the read-side queries over what the ingest stored."""
