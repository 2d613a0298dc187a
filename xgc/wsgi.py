"""WSGI entry point: ``gunicorn xgc.wsgi``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xgc.settings")

application = get_wsgi_application()
