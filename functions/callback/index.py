"""SCF handler behind a Function URL: CI job callbacks (see shared/callback.py)."""
import serverless_wsgi

from shared import health
from shared.callback import create_app
from shared.cloud import Clients
from shared.funcurl import to_wsgi_event
from shared.log import configure

configure()  # JSON log lines on stdout, before anything logs
SETTINGS, PROBLEM = health.cold_start()
app = create_app(lambda: health.require(SETTINGS, PROBLEM), Clients)


def main_handler(event, context):
    if health.is_health(event):  # doctor, through SCF Invoke (not the Function URL): no COS or CI call
        return health.answer("callback", PROBLEM, SETTINGS)
    health.require(SETTINGS, PROBLEM)
    return serverless_wsgi.handle_request(app, to_wsgi_event(event), context)
