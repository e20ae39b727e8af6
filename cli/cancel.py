"""Cancelling jobs as a library: find the jobs of the records in a state, cancel one job and
advance its record exactly as a callback would (shared.lifecycle.Lifecycle.advance). `cos-matting cancel`
(cli/cmd_cancel.py) parses, asks, runs these in parallel and prints."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List

from cli.clients import AnyClients, ThreadClients
from cli.progress import Progress
from shared.states import CANCELLABLE, Rank

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.cloud import Clients
    from shared.config import Settings


def targets_in_state(settings: Settings, clients: AnyClients, state: str, concurrency: int = 8,
                     progress: bool = True) -> List[Dict[str, Any]]:
    """The jobs of every record whose newest snapshot is in `state` (records read in parallel)."""
    from concurrent.futures import ThreadPoolExecutor

    from shared.records import RecordStore, owned

    pool = clients if isinstance(clients, ThreadClients) else None

    def store() -> Any:
        return RecordStore.of(settings, (pool.get() if pool else clients).storage)

    candidates = [newest for newest in store().newest_stages() if Rank.SUBMITTED <= newest.rank <= Rank.RUNNING]
    bar = Progress(total=len(candidates), label="reading records", delay=1.0, enabled=progress)
    found = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as executor:
        for done, rec in enumerate(executor.map(lambda newest: store().read(newest), candidates), 1):
            bar.update(done)
            if rec is not None and rec.state == state and rec.job_id and owned(settings, rec):
                found.append({"job_id": rec.job_id, "record_id": rec.id, "key": rec.source.key})
    bar.finish(len(candidates))
    return found


def cancel_one(settings: Settings, clients: Clients, job_id: str, dry_run: bool = False) -> Dict[str, Any]:
    """Cancel one job and advance its record. Returns a result row; `outcome` starts with failed: on error."""
    from shared.cloud import CloudError
    from shared.identity import Correlation
    from shared.lifecycle import Lifecycle, WrongJob

    life = Lifecycle.of(settings, clients)
    row: Dict[str, Any] = {"job_id": job_id}
    step = "describe"
    try:
        job = clients.ci.describe(job_id)
        corr = Correlation.parse(job.user_data)
        if corr is None:
            row.update(outcome="failed:not-ours", detail="the job has no cos-matting correlation id (UserData cm:...)")
            return row
        if corr.foreign(settings.deployment):
            row.update(outcome="failed:not-ours", detail=f"the job belongs to deployment {corr.deployment}, not "
                                                         f"{settings.deployment or '(none set)'}: use its --stage")
            return row
        rid = corr.record_id
        row.update(record_id=rid, key=job.Input.Object if job.Input else None, before=job.State)
        if dry_run:
            row["outcome"] = "would-cancel" if job.State in CANCELLABLE else f"skipped:{job.State}"
            return row
        if job.State in CANCELLABLE:
            step = "cancel"
            clients.ci.cancel(job_id)
            step = "describe"
            job = clients.ci.describe(job_id)  # the state we record is the one CI reports
        step = "record"
        record, _ = life.store.load(rid)
        if record is None:
            row.update(outcome="cancelled" if job.State == "Cancel" else f"skipped:{job.State}",
                       state=job.State, detail="no record for this job")
            return row
        result, record = life.advance(record, job)
        row.update(state=record.state, recorded=result,
                   outcome="cancelled" if job.State == "Cancel" and row["before"] in CANCELLABLE
                   else f"skipped:{job.State}")
    except WrongJob as exc:
        row.update(outcome="failed:record", detail=str(exc))
    except CloudError as exc:
        row.update(outcome=f"failed:{step}", detail=str(exc))
    return row
