"""Maandishi ya Kiswahili (Swahili texts)."""
