"""The domain and its persistence: models, the ledger, use cases, read views and every
text a person reads. Imports nothing above it (docs/architecture.md)."""
