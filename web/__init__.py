"""The web tier: the app factory, health and metrics, and the payment hook for
providers without a channel of their own."""
