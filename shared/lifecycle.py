"""A record's life after its claim, as one object: `Lifecycle` holds the record store and the
clients, and advances a record from the job as CI reports it (`GET /jobs/<id>`). The callback,
reconcile, submit and `cancel` all go through it, so all move records in exactly the same way.
(The shape of Powertools' idempotency handler: one object built with its persistence layer,
whose methods are the steps; the pure parts, `apply`, `belongs`, `forgotten`, stay functions.)

Newest version wins. Each attempt's job writes its own key (`<output prefix>.versions/
<record id>-<attempt>.mp4`). On Success the result is published, copied under the
predictable name, only if the source still is the version the record belongs to (a
HEAD right before the copy); a record whose source was overwritten meanwhile keeps its
result at its own key, noted. The one window left, a newer version published between
our HEAD and our copy, is closed after the copy: if the source changed, the current
version's record, when already Success, is published again over ours; when it is not
final yet, its own recheck (reconcile, RECHECK_AFTER after its final stage) finds our
copy under the name and publishes it again. The published copy carries its links and
the user's tags in the copy request itself; the job's own key is tagged only when it
stays the result.

A job that carries this record's id but is not the job the record names (a slow
create answered after our retry, an old attempt's job) is cancelled when it has not
started, its result is ignored, and a note is written beside the record.
"""
from datetime import datetime
from typing import Dict, List, NamedTuple, Optional, Tuple

from . import notify, tags
from .cloud import CloudError, Clients
from .config import Settings
from .dates import parse_time
from .identity import Correlation, ObjectVersion, is_record
from .jobs import JobDetail
from .log import log
from .records import Record, RecordStore, Retry, now_iso
from .states import CANCELLABLE, JOB_FINAL, State, rank_of

MAX_REPUBLISH = 2
FORGOTTEN = "NoSuchJob"  # shared.cloud.CI.describe: the id came back in NonExistJobIds


class WrongJob(Exception):
    """The job does not carry this record's correlation id."""


def _parse_time(value: str) -> Optional[datetime]:
    try:
        return parse_time(value)  # CI's 2022-06-27T14:44:10+0800; "-" while not started or ended
    except ValueError:
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
    return {"bucket": op.Output.Bucket, "region": op.Output.Region, "key": op.Output.Object,
            "staging": op.Output.Object}


def apply(record: Record, job: JobDetail) -> Record:
    """The record as it should read after seeing `job` (pure)."""
    update: Dict[str, object] = {"state": job.State, "job_id": job.JobId, "updated_at": now_iso(),
                                 "timings": timings(job) or None}
    if job.State == State.Success:
        update.update(output=output_location(job), media=media_essentials(job) or None)
    elif job.State in JOB_FINAL:
        update["error"] = {"Code": job.Code, "Message": job.Message}
        # CI gave up on this input; a cancel was someone's choice: either way the same
        # request will not do better until the input or the decision changes.
        update["retry"] = Retry.NEW_INPUT
    return record.model_copy(update=update)


def belongs(record_id: str, job: JobDetail, deployment: str = "") -> Correlation:
    corr = Correlation.parse(job.user_data)
    if corr is None or corr.record_id != record_id:
        raise WrongJob(f"job {job.JobId} does not belong to record {record_id}")
    if corr.foreign(deployment):
        raise WrongJob(f"job {job.JobId} belongs to deployment {corr.deployment}, not {deployment or '(none set)'}")
    return corr


class Seen(NamedTuple):
    """The source's version as a step last saw it (None: gone), so the next step need not HEAD again."""

    version: Optional[ObjectVersion]


class Lifecycle:
    """The steps of a record's life on one store with one set of clients (built once per handler)."""

    def __init__(self, clients: Clients, store: RecordStore) -> None:
        self.clients, self.store = clients, store

    @classmethod
    def of(cls, settings: Settings, clients: Clients) -> "Lifecycle":
        """The lifecycle of the records the settings name, on `clients`."""
        return cls(clients, RecordStore.of(settings, clients.storage))

    def advance(self, record: Record, job: JobDetail) -> Tuple[str, Record]:
        """Move `record` forward to the job's state. Returns ("advanced"|"unchanged"|"ignored", record).

        Terminal states publish and tag first and record second: both are idempotent, so a
        failure leaves nothing recorded and the sender's retry redoes it all.
        """
        corr = belongs(record.id, job, self.store.deployment)
        if corr.attempt < record.attempt:  # an earlier attempt's own job, heard late: history, not news
            log("record.old_attempt", record_id=record.id, job_id=job.JobId, attempt=corr.attempt)
            return "ignored", record
        if corr.attempt > record.attempt or (record.job_id and record.job_id != job.JobId):
            return "ignored", self.second_job(record, job, corr)
        if rank_of(job.State) <= record.rank:
            return "unchanged", record
        return self._write(record, apply(record, job))

    def refresh(self, record: Record) -> Tuple[str, Record]:
        """Re-read the record's job from CI and advance; for reconcile."""
        if not record.job_id:
            raise CloudError("reconcile", 0, "NoJob", f"record {record.id} has no job id")
        try:
            job = self.clients.ci.describe(record.job_id)
        except CloudError as exc:
            if exc.code != FORGOTTEN:
                raise
            return self._write(record, forgotten(record))
        return self.advance(record, job)

    def _write(self, record: Record, new: Record) -> Tuple[str, Record]:
        """Record `new`, the stage after `record`: a final one publishes and tags first (see `advance`)."""
        submit_tagged = False
        if new.terminal:
            notes, submit_tagged = self.finish(new)
            if notes:
                new = new.model_copy(update={"notes": list(record.notes) + notes})
        if not self.store.advance(new, close=False):
            # A concurrent writer recorded this stage first (two jobs of one attempt, or two
            # deliveries of one job). Our publish and tags went out before we knew, possibly under
            # another job id; the loser is the one that sees both, so it puts the winner's back.
            winner, _ = self.store.load(record.id)
            if winner is not None and winner.terminal:
                self.recheck_or_reopen(winner)
            return "unchanged", record
        if new.terminal:  # the open marker stays: reconcile rechecks the record, then closes it
            self.settle(new, source=not submit_tagged)
        log("record.advanced", record_id=record.id, job_id=new.job_id, state=new.state, previous=record.state,
            attempt=record.attempt)
        return "advanced", new

    def second_job(self, record: Record, job: JobDetail, corr: Correlation) -> Record:
        """A job this record did not choose: cancel it if it has not started, note it, ignore its result."""
        action = "ignored its result"
        if job.State in CANCELLABLE:
            try:
                self.clients.ci.cancel(job.JobId)
                action = "cancelled it before it started"
            except CloudError as exc:
                action = f"could not cancel it ({exc.code}); ignored its result"
        text = (f"second job {job.JobId} (attempt {corr.attempt}, {job.State}) found for this record, "
                f"whose job is {record.job_id or 'not recorded yet'}: {action}")
        self.store.note(record, job.JobId, text)
        log("record.second_job", level="warning", record_id=record.id, job_id=job.JobId, action=action)
        return record.model_copy(update={"notes": list(record.notes) + [text]})

    def finish(self, record: Record) -> Tuple[List[str], bool]:
        """Publish a success (newest version wins) and tag the source. Returns notes for the record, and
        whether the source already carried this attempt's tags from submit (then no submit's tag write
        can land after ours: `settle` need not read them again)."""
        notes: List[str] = []
        submit_tagged = False
        seen: Optional[Seen] = None
        if record.state == State.Success and record.output:
            published, note, seen = self.publish(record)
            if published:
                record.output["key"] = published
            if note:
                notes.append(note)
        # the source as publish last saw it (after its copy), else one HEAD now
        current = seen.version if seen else self.clients.storage.version(record.source.bucket, record.source.key)
        if current is None:
            notes.append(f"source gone, not tagged: {record.source.key}")
        elif is_record(current, record.id):
            more, submit_tagged = self._tag_source(record)
            notes += more
        return notes, submit_tagged

    def publish(self, record: Record, depth: int = 0) -> Tuple[Optional[str], str, Optional[Seen]]:
        """(published key or None, note, the source's version as last seen or None if not looked at).
        See the module docstring for the ordering. The copy carries the output's links with the
        user's tags of what the name held (read just before), in one request: the published object
        is never seen without them. The job's own key is tagged only when it stays the result."""
        clients = self.clients
        out = record.output or {}
        bucket, staging, name = out["bucket"], out.get("staging") or out["key"], record.publish_as
        links = {tags.ROLE: "output", tags.RECORD: record.id, tags.JOB: tags.job_value(record.job_id)}
        if not name or name == staging:
            kept = self._keep(bucket, staging, links)
            return None, _gone(staging) if kept is None else kept, None
        current = clients.storage.version(record.source.bucket, record.source.key)
        if current is None or not is_record(current, record.id):
            why = "gone" if current is None else "overwritten by a newer version"
            kept = self._keep(bucket, staging, links)
            note = _gone(staging) if kept is None else \
                f"not published as {name}: the source was {why}; result kept at {staging}"
            return None, note, Seen(current)
        before = clients.out_storage.get_tags(bucket, name) or {}
        merged, skipped = tags.merge(tags.user_tags(before), links)
        try:
            clients.out_storage.copy(bucket, name, bucket, out["region"], staging, tags=merged)
        except CloudError as exc:
            if exc.status == 404 and exc.code in ("NoSuchKey", "NoSuchObject"):
                return None, _gone(staging), Seen(current)
            raise
        after = clients.storage.version(record.source.bucket, record.source.key)
        if after is not None and not is_record(after, record.id) and depth < MAX_REPUBLISH:
            newer, _ = self.store.load(after.record_id)
            if newer is not None and newer.state == State.Success and newer.output:
                self.publish(newer, depth + 1)  # it may have published between our HEAD and copy
                return None, f"superseded while publishing: {name} holds the newer version's result", Seen(after)
        return name, _limit_note(name, skipped), Seen(after)

    def _keep(self, bucket: str, key: str, links: Dict[str, str]) -> Optional[str]:
        """The job's own key stays the result: it carries the links (read-merge-write). Its tag-limit
        note ("" if none), or None if it is gone."""
        kept = self.clients.out_storage.merge_tags(bucket, key, links)
        return None if kept is None else _limit_note(key, kept.skipped)

    def tag_source(self, record: Record) -> List[str]:
        """The source's job/state tags, read right before the write; a state never moves back."""
        return self._tag_source(record)[0]

    def _tag_source(self, record: Record) -> Tuple[List[str], bool]:
        """(`tag_source`'s notes, whether the tags it read already named this record's attempt)."""
        ours = {tags.RECORD: record.id, tags.JOB: tags.job_value(record.job_id), tags.STATE: record.state,
                tags.ATTEMPT: str(record.attempt)}
        src = record.source
        try:
            merged = self.clients.storage.merge_tags(src.bucket, src.key, ours, forward_only=True)
            if merged is None:
                return [f"source gone, not tagged: {src.key}"], False
        except CloudError as exc:
            if record.terminal:
                raise  # the final state must reach the source: the sender retries
            log("tags.source_failed", level="warning", key=src.key, error=str(exc))  # the final state tags it again
            return [], False
        note = _limit_note(src.key, merged.skipped)
        return ([note] if note else []), tags.names_attempt(merged.read, record.id, record.attempt)

    def settle(self, record: Record, source: bool = True) -> None:
        """Right after the final stage is written: the source's tags are read once more (`source`;
        False when `finish` saw submit's own tag write had landed, so none of submit's can land after
        ours), and the notification is enqueued. A CloudError here is raised, never swallowed; the
        record's open marker stays either way, and reconcile's recheck (`recheck`, RECHECK_AFTER
        later) settles it again before it closes it. Races that only a later look can see (an older
        version's publish over ours, a submit tag write landing late) are that recheck's."""
        if source:
            self.settle_source_tags(record)
        notify.enqueue(self.clients.settings, self.store, record)

    def recheck(self, record: Record) -> None:
        """A final record, long enough after its final stage that no write racing it can still land
        (reconcile.RECHECK_AFTER): its published output and the source's tags are its own again, and
        its notification is in the outbox unless it was sent (its writer may have died before `settle`)."""
        self.settle_published(record)
        self.settle_source_tags(record)
        notify.ensure(self.clients.settings, self.store, record)

    def recheck_or_reopen(self, record: Record) -> None:
        """`recheck` at once for a record whose final stage another writer won, after our own publish
        and tags went out (its event through `notify.ensure`: the winner's may be delivered already,
        and must not go out twice): if it fails, the open marker is written again first, so reconcile
        still comes back to it."""
        try:
            self.recheck(record)
        except CloudError:
            self.store.mark_open(record)
            raise

    def settle_published(self, record: Record) -> None:
        """The published name holds this record's result, or is put right: an older version's publish
        that raced ours (its copy after ours, its check of the source before our final stage existed)
        is seen here, on the recheck (`recheck`), so one of the two always sees the other. Only our own
        output is ever copied over (it carries our role and a record id, `publish`): a name the user
        deleted meanwhile stays deleted, and an object of the user's under it stays theirs."""
        out = record.output or {}
        if record.state != State.Success or not record.publish_as or out.get("key") != record.publish_as:
            return
        current = self.clients.out_storage.get_tags(out["bucket"], record.publish_as)
        if current is None or not tags.is_output(current) or not current.get(tags.RECORD):
            return
        if current.get(tags.RECORD) != record.id or current.get(tags.JOB) != tags.job_value(record.job_id):
            self.publish(record)

    def settle_source_tags(self, record: Record) -> None:
        """After the final stage is written: a submit's read-merge-write of `Submitted` that raced
        ours (read before our tag write, written after it) is put right: at once when `finish` did not
        see submit's write land, and always on the recheck, RECHECK_AFTER later, when any such write
        has landed."""
        src = record.source
        current = self.clients.storage.get_tags(src.bucket, src.key)
        job = tags.job_value(record.job_id)
        if current and current.get(tags.RECORD) == record.id and (current.get(tags.STATE) != record.state
                                                                  or current.get(tags.JOB) != job):
            self.tag_source(record)

    def reinstate(self, record: Record) -> None:
        """A done record's content is the source again (the same bytes uploaded after a newer
        version, or deleted and uploaded again; identity.py): its published output and the
        source's tags are this record's again. A copy onto itself changes neither: no write."""
        self.settle_published(record)
        self.tag_source(record)

    def close_as(self, record: Record, state: str) -> None:
        """Close a claim that can never become a job (source gone or overwritten)."""
        reason = {State.Gone: "the source object is gone",
                  State.Superseded: "the source was overwritten by a newer version"}
        closed = record.model_copy(update={"state": state, "updated_at": now_iso(), "retry": Retry.NEW_INPUT,
                                           "error": {"Code": "Source" + state, "Message": reason[state]}})
        self.store.advance(closed)
        log("record.closed", record_id=record.id, state=state)


def _gone(key: str) -> str:
    return f"not published: the job's output {key} is gone"


def _limit_note(key: str, skipped: List[str]) -> str:
    if not skipped:
        return ""
    log("tags.limit", level="warning", key=key, skipped=skipped)
    return f"tag limit reached on {key}: kept the user's tags, skipped {', '.join(skipped)}"


def forgotten(record: Record) -> Record:
    """The record's job is one CI says it has no such job (describe's NonExistJobIds, e.g. once
    its retention ran out): it will never call back or end, so the record ends Failed. Nothing
    was wrong with the input: `cos-matting retry` (retry: now) runs it again."""
    return record.model_copy(update={
        "state": State.Failed, "updated_at": now_iso(), "retry": Retry.NOW,
        "error": {"Code": FORGOTTEN, "Message": f"CI no longer knows job {record.job_id} (DescribeMediaJob "
                                               f"answered it in NonExistJobIds)"}})
