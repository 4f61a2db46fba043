"""The composition root and what every entry point shares: `Services` built from
settings (database, Redis, the job queue, the gateways, the clock), the metrics the
channels count, and the guard every webhook passes."""
