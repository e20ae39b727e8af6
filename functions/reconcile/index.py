"""SCF timer handler: advance records whose callback never came, resubmit stale claims."""
from shared.cloud import Clients
from shared.config import load_settings
from shared.log import configure
from shared.reconcile import reconcile

configure()  # JSON log lines on stdout, before anything logs
SETTINGS = load_settings()


def main_handler(event, context):
    return reconcile(SETTINGS, Clients(SETTINGS)).model_dump()
