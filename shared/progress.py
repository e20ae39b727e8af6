"""Advance a record from the job as CI reports it (`GET /jobs/<id>`): shared by the
callback and by reconcile, so both move records in exactly the same way."""
from datetime import datetime
from typing import Dict, Optional, Tuple

from . import tags
from .cloud import CloudError, Clients
from .jobs import JobDetail, STATE_RANK
from .log import log
from .records import Record, RecordStore, now_iso


class WrongJob(Exception):
    """The job does not carry this record's correlation id."""


def _parse_time(value: str) -> Optional[datetime]:
    try:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        return None


def timings(job: JobDetail) -> Dict[str, float]:
    created, started, ended = (_parse_time(t) for t in (job.CreationTime, job.StartTime, job.EndTime))
    out: Dict[str, float] = {}
    if created and started:
        out["queued_s"] = (started - created).total_seconds()
    if started and ended:
        out["running_s"] = (ended - started).total_seconds()
    if created and ended:
        out["total_s"] = (ended - created).total_seconds()
    return out


def media_essentials(job: JobDetail) -> Dict[str, object]:
    info = job.Operation.MediaInfo if job.Operation else None
    if not info:
        return {}
    out: Dict[str, object] = {}
    if info.Format:
        out.update({k: v for k, v in (("duration", info.Format.Duration), ("size", info.Format.Size)) if v is not None})
    video = info.Stream.Video if info.Stream else None
    if video and video.Width and video.Height:
        out["resolution"] = f"{video.Width}x{video.Height}"
        if video.Fps:
            out["fps"] = video.Fps
    return out


def output_location(job: JobDetail) -> Optional[Dict[str, str]]:
    op = job.Operation
    if not op or not op.Output:
        return None
    return {"bucket": op.Output.Bucket, "region": op.Output.Region, "key": op.Output.Object}


def apply(record: Record, job: JobDetail) -> Record:
    """The record as it should read after seeing `job` (pure)."""
    update: Dict[str, object] = {"state": job.State, "job_id": job.JobId, "updated_at": now_iso(),
                                 "timings": timings(job) or None}
    if job.State == "Success":
        update.update(output=output_location(job), media=media_essentials(job) or None)
    elif job.State in ("Failed", "Cancel"):
        update["error"] = {"Code": job.Code, "Message": job.Message}
    return record.model_copy(update=update)


def check_correlation(record_id: str, job: JobDetail) -> None:
    marker = f"cm:{record_id}"
    if not (job.user_data == marker or job.user_data.startswith(marker + "|")):
        raise WrongJob(f"job {job.JobId} does not belong to record {record_id}")


def advance(clients: Clients, store: RecordStore, record: Record, job: JobDetail) -> Tuple[str, Record]:
    """Move `record` forward to the job's state. Returns ("advanced"|"unchanged", record).

    Terminal states tag first and record second: tags are idempotent, so a tag
    failure leaves nothing written and the sender's retry redoes it all.
    """
    check_correlation(record.id, job)
    if STATE_RANK[job.State] <= record.rank:
        return "unchanged", record
    new = apply(record, job)
    if new.terminal:
        notes = tag_outputs(clients, new)
        if notes:
            new = new.model_copy(update={"notes": list(record.notes) + notes})
    if not store.advance(new):
        return "unchanged", record  # a concurrent writer recorded this stage first
    log("record.advanced", record_id=record.id, job_id=job.JobId, state=job.State, previous=record.state)
    return "advanced", new


def tag_outputs(clients: Clients, record: Record) -> list:
    """Mark the output as ours (the loop guard reads it) and give the source its final state."""
    notes = []
    links = {tags.RECORD: record.id, tags.JOB: record.job_id or ""}
    targets = []
    if record.state == "Success" and record.output:
        targets.append((clients.out_storage, record.output["bucket"], record.output["key"],
                        {tags.ROLE: "output", **links}))
    targets.append((clients.storage, record.source.bucket, record.source.key, {**links, tags.STATE: record.state}))
    for storage, bucket, key, ours in targets:
        current = storage.get_tags(bucket, key)
        if current is None:
            notes.append(f"not tagged, object gone: {key}")
            continue
        merged, skipped = tags.merge(current, ours)
        if merged != current:
            storage.put_tags(bucket, key, merged)
        if skipped:
            notes.append(f"tag limit reached on {key}: kept the user's tags, skipped {', '.join(skipped)}")
            log("tags.limit", level="warning", key=key, skipped=skipped)
    return notes


def refresh(clients: Clients, store: RecordStore, record: Record) -> Tuple[str, Record]:
    """Re-read the record's job from CI and advance; for reconcile."""
    if not record.job_id:
        raise CloudError("reconcile", 0, "NoJob", f"record {record.id} has no job id")
    return advance(clients, store, record, clients.ci.describe(record.job_id))
