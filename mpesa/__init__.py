"""M-Pesa through Safaricom's Daraja API: the HTTP client (`mpesa.daraja`), Daraja's
callback bodies as typed values (`mpesa.callbacks`) and a fake Daraja for tests and the
demo (`mpesa.fake`). See docs/mpesa.md.

Nothing here imports the domain's layers above core: `runtime`, the channels and the
workers use these pieces, never the other way round.
"""
