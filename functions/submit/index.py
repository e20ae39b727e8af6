"""SCF handler: COS upload events -> SegmentVideoBody jobs (see shared/submit.py)."""
from shared import health
from shared.cloud import Clients
from shared.events import parse_uploads
from shared.log import configure
from shared.submit import Submitter, answer, handle

configure()  # JSON log lines on stdout, before anything logs
SETTINGS, PROBLEM = health.cold_start()  # checked once: a bad deploy fails its first event, and doctor says why
_submitter = None


def main_handler(event, context):
    global _submitter
    if health.is_health(event):  # doctor: no COS or CI call
        return health.answer("submit", PROBLEM, SETTINGS)
    settings = health.require(SETTINGS, PROBLEM)
    if _submitter is None:
        _submitter = Submitter(settings, Clients(settings))
    outcomes = handle(parse_uploads(event, settings.region), _submitter)  # region from settings; a malformed record fails alone
    return answer(outcomes)  # raises SubmitFailed after processing the rest: SCF retries the event, retries are safe
