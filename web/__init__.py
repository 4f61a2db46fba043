"""The web tier: app factory, health and metrics; later the admin and simulator."""
