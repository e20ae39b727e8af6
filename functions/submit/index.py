"""SCF handler: COS upload events -> SegmentVideoBody jobs (see shared/submit.py)."""
from shared.cloud import Clients
from shared.config import load_settings
from shared.events import parse_uploads
from shared.submit import Submitter, handle

SETTINGS = load_settings()  # validated once, at cold start: a bad deploy fails on its first event
_submitter = None


def main_handler(event, context):
    global _submitter
    if _submitter is None:
        _submitter = Submitter(SETTINGS, Clients(SETTINGS))
    outcomes = handle(parse_uploads(event, SETTINGS.region), _submitter)  # region from settings; a malformed record fails alone
    failed = [o for o in outcomes if o.failed]
    if failed:  # after processing the rest: SCF retries the event, and retries are safe
        raise RuntimeError(f"{len(failed)} of {len(outcomes)} records failed: "
                           + "; ".join(f"{o.key}: {o.outcome}" for o in failed))
    return {"outcomes": [o.model_dump(exclude_none=True) for o in outcomes]}
