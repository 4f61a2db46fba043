"""Background work: RQ queues, jobs, the periodic schedule and the telecom gateways."""
