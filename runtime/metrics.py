"""Process-level counters that channels increment (hops, SMS, errors)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

REGISTRY = CollectorRegistry()

USSD_HOPS = Counter("harambee_ussd_hops", "USSD hops answered", ["outcome"], registry=REGISTRY)
USSD_SECONDS = Histogram("harambee_ussd_hop_seconds", "Time to answer a USSD hop",
                         registry=REGISTRY,
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
SMS_IN = Counter("harambee_sms_in", "Incoming SMS", ["outcome"], registry=REGISTRY)
PAYMENTS_IN = Counter("harambee_payments_in", "Payment receipts", ["outcome"], registry=REGISTRY)
