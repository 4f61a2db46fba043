"""Entry point for gunicorn: `gunicorn wsgi:app`."""
from web.app import create_app

app = create_app()
