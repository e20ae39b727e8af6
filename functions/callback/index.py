"""SCF handler behind a Function URL: CI job callbacks (see shared/callback.py)."""
import serverless_wsgi

from shared.callback import create_app
from shared.cloud import Clients
from shared.config import load_settings
from shared.funcurl import to_wsgi_event
from shared.log import configure

configure()  # JSON log lines on stdout, before anything logs
SETTINGS = load_settings()
app = create_app(lambda: SETTINGS, Clients)


def main_handler(event, context):
    return serverless_wsgi.handle_request(app, to_wsgi_event(event), context)
