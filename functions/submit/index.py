"""SCF handler: COS upload events -> SegmentVideoBody jobs (see shared/submit.py)."""
from shared.cloud import Clients
from shared.config import load_settings
from shared.events import parse_uploads
from shared.log import configure
from shared.submit import Submitter, answer, handle

configure()  # JSON log lines on stdout, before anything logs
SETTINGS = load_settings()  # validated once, at cold start: a bad deploy fails on its first event
_submitter = None


def main_handler(event, context):
    global _submitter
    if _submitter is None:
        _submitter = Submitter(SETTINGS, Clients(SETTINGS))
    outcomes = handle(parse_uploads(event, SETTINGS.region), _submitter)  # region from settings; a malformed record fails alone
    return answer(outcomes)  # raises SubmitFailed after processing the rest: SCF retries the event, retries are safe
