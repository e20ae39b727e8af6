"""Retrying records as a library: which records a target or a state names, and running one again
as a new attempt through the trigger's own idempotent path (shared.submit.Submitter.retry).
`cos-matting retry` (cli/cmd_retry.py) parses, asks and prints."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from shared.states import RETRYABLE, Rank

if TYPE_CHECKING:  # annotations only: importing them costs the command nothing
    from shared.cloud import Clients
    from shared.config import Settings


NOT_OURS = "failed:not-ours"  # as `cancel` says of another deployment's job (cli/cancel.py)


def resolve(settings: Settings, clients: Clients, target: str, command: str = "retry") -> Dict[str, Any]:
    """A record id as given, or a key's current version's record id. Another deployment's record
    (`records.owned`, as reconcile and `cancel` judge it) comes back refused (`NOT_OURS`, its detail
    saying which `--stage` may run `command` on it): run with our settings, its new job would carry
    our callback URL and output prefix, and its own callback would refuse it (403)."""
    from shared.identity import RECORD_ID
    from shared.records import RecordStore, UnreadableRecord, not_ours

    if RECORD_ID.match(target):
        row: Dict[str, Any] = {"record_id": target}
    else:
        version = clients.storage.version(settings.bucket, target)
        if version is None:
            return {"key": target, "outcome": "failed:gone", "detail": f"no object {target} in {settings.bucket}"}
        row = {"record_id": version.record_id, "key": target}
    try:
        record, _ = RecordStore.of(settings, clients.storage).load(row["record_id"])
    except UnreadableRecord:
        return row  # retry_one reports it
    why = not_ours(settings, record) if record is not None else None
    if why:
        return {**row, "key": record.source.key, "outcome": NOT_OURS, "detail": f"{why}: {_owner_fix(record, command)}"}
    return row


def _owner_fix(record: Any, command: str) -> str:
    """Which stage may act on the record: deploy names a deployment `<app>-<stage>` (serverless.yml)."""
    from deploy.stage import APP

    if record.deployment.startswith(f"{APP}-"):
        return f"run {command} with --stage {record.deployment[len(APP) + 1:]}"
    if record.deployment:
        return f"run {command} as that deployment (its --stage, or COS_MATTING_DEPLOYMENT={record.deployment})"
    return f"run {command} with the --stage that watches {record.source.key}"


def in_state(settings: Settings, clients: Clients, state: str, since: Optional[datetime]) -> List[Dict[str, Any]]:
    """Records whose newest stage is final in `state` (a scan of the records: history, on demand)."""
    from shared.records import RecordStore, UnreadableRecord, age_seconds, owned

    store = RecordStore.of(settings, clients.storage)
    found = []
    for newest in store.newest_stages():
        if newest.rank != Rank.FINAL:
            continue
        if since is not None and age_seconds(newest.last_modified) > (datetime.now(timezone.utc) - since).total_seconds():
            continue
        try:
            record, _ = store.load(newest.record_id)
        except UnreadableRecord as exc:
            found.append({"record_id": newest.record_id, "outcome": "failed:unreadable", "detail": str(exc)})
            continue
        if record is not None and record.state == state and owned(settings, record):  # not another deployment's
            found.append({"record_id": record.id, "key": record.source.key, "before": record.state,
                          "attempt": record.attempt, "hint": hint_of(record)})
    return found


def hint_of(record: Any) -> str:
    """The record's own word on whether a retry can help: now | after-fix | new-input ("" if none)."""
    return record.retry.value if getattr(record, "retry", None) else ""


def retry_one(settings: Settings, clients: Clients, row: Dict[str, Any], dry_run: bool,
              include_new_input: bool = False) -> Dict[str, Any]:
    """Run the record again; one whose record says only a new input can help (`retry: new-input`, e.g. the
    input is not a video) is skipped unless `include_new_input`: the same input would fail the same way."""
    from shared.cloud import CloudError
    from shared.events import Upload
    from shared.records import RecordStore
    from shared.submit import Submitter

    submitter = Submitter(settings, clients)
    rid = row["record_id"]
    try:
        record, _ = RecordStore.of(settings, clients.storage).load(rid)
        if record is None:
            if not row.get("key"):
                return {**row, "outcome": "failed:no-record", "detail": f"no record {rid}"}
            if dry_run:
                return {**row, "outcome": "would-submit"}
            version = clients.storage.version(settings.bucket, row["key"])
            if version is None:
                return {**row, "outcome": "failed:gone", "detail": f"no object {row['key']}"}
            up = Upload(bucket=settings.bucket, appid=settings.bucket.rsplit("-", 1)[-1], region=settings.region,
                        key=version.key, etag=version.etag, size=version.size, event_name="cos:ObjectCreated:Retry")
            out = submitter.process(up)
        else:
            row = {**row, "key": record.source.key, "before": record.state, "attempt": record.attempt,
                   "hint": hint_of(record)}
            if row["hint"] == "new-input" and not include_new_input and record.state in RETRYABLE:
                return {**row, "outcome": "skipped:new-input",
                        "detail": "its record says only a new input can help (upload a fixed file, or pass "
                                  "--include-new-input to run the same input again)"}
            if dry_run:
                ok = record.state in RETRYABLE
                return {**row, "outcome": "would-retry" if ok else f"skipped:{record.state}"}
            out = submitter.retry(rid)
    except (CloudError, ValueError) as exc:
        return {**row, "outcome": "failed:record", "detail": str(exc)}
    return {**row, "outcome": out.outcome, "job_id": out.job_id, "attempt": out.attempt or row.get("attempt"),
            "detail": out.detail}
