"""SCF timer handler: advance records whose callback never came, resubmit stale claims."""
from shared import health
from shared.cloud import Clients
from shared.log import configure
from shared.reconcile import reconcile

configure()  # JSON log lines on stdout, before anything logs
SETTINGS, PROBLEM = health.cold_start()


def main_handler(event, context):
    if health.is_health(event):  # doctor: no COS or CI call
        return health.answer("reconcile", PROBLEM, SETTINGS)
    settings = health.require(SETTINGS, PROBLEM)
    return reconcile(settings, Clients(settings)).model_dump()
