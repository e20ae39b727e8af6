"""`cos-matting generate-event`: print events shaped exactly like the real ones.

    cos-matting generate-event cos-put --bucket videos-1250000000 --key "input/a b.mp4" --size 1048576
    cos-matting generate-event callback --job-id s123... --state Failed --format xml
    cos-matting generate-event callback --job-id s123... --funcurl     # wrapped in a Function URL request
    cos-matting generate-event callback --record RECORD_ID --local http://127.0.0.1:9000 > cb.json
        # a signed Function URL request for that record's job, ready for `cos-matting replay cb.json`
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import mimetypes
import re
import sys
import time
import uuid
from typing import Any, Dict, List, Optional

from cli.env import add_env_options, command_env
from cli.errors import UsageError
from cli.eventio import PLACEHOLDER_JOB, PLACEHOLDER_QUERY, signed_query
from cli.ui import dump_json

COS_EVENTS = ("cos:ObjectCreated:Put", "cos:ObjectCreated:Post", "cos:ObjectCreated:Copy",
              "cos:ObjectCreated:CompleteMultipartUpload", "cos:ObjectRemove:Delete",
              "cos:ObjectRemove:DeleteMarkerCreated")
# COS puts the short region name in cosBucket.region (the COS trigger's sample event, 583/9707: "cd").
SHORT_REGION = {"ap-guangzhou": "gz", "ap-shanghai": "sh", "ap-beijing": "bj", "ap-chengdu": "cd",
                "ap-chongqing": "cq", "ap-nanjing": "nj", "ap-hongkong": "hk", "ap-singapore": "sg",
                "ap-tokyo": "tokyo", "ap-seoul": "kr", "ap-bangkok": "th", "ap-mumbai": "in",
                "na-siliconvalley": "sv", "na-ashburn": "va", "eu-frankfurt": "de", "sa-saopaulo": "sao"}
STATES = {  # state -> (Code, Message) as CI reports them
    "Success": ("Success", ""),
    "Failed": ("InternalError", "segmentation failed: no person found"),
    "Cancel": ("Cancelled", "job cancelled"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "generate-event", help="print a COS trigger event or a CI job callback, shaped like the real ones",
        description="Print an event exactly shaped like the real one, for `invoke`, `replay` or your own tests. "
                    "Output goes to stdout; redirect it into a file under events/ to keep it.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True

    cos = kinds.add_parser("cos-put", help="a COS trigger event (ObjectCreated / ObjectRemove)",
                           description="A COS trigger event; repeat --key for a batch with several Records.")
    cos.add_argument("--bucket", required=True, metavar="NAME-APPID", help="bucket with its APPID, e.g. videos-1250000000")
    cos.add_argument("--key", required=True, action="append", dest="keys", metavar="KEY",
                     help="object key (repeat for several records)")
    cos.add_argument("--size", type=int, default=1048576, help="object size in bytes (default: %(default)s)")
    cos.add_argument("--etag", help="ETag without quotes (default: derived from bucket and key)")
    cos.add_argument("--region", default="ap-guangzhou", help="bucket region (default: %(default)s)")
    cos.add_argument("--event-name", default="cos:ObjectCreated:Put", metavar="NAME",
                     help=f"one of {', '.join(COS_EVENTS)} (default: %(default)s)")
    cos.add_argument("--content-type", help="Content-Type in the meta (default: guessed from the key)")
    cos.add_argument("--event-time", type=int, help="epoch seconds (default: now)")
    cos.add_argument("--function", default="cos-matting-submit",
                     help="function named in eventQueue (default: %(default)s)")
    cos.add_argument("--source-ip", default="203.0.113.7", help="requestSourceIP (default: %(default)s)")
    cos.set_defaults(func=run_cos)

    cb = kinds.add_parser("callback", help="a CI TaskFinish callback body (JSON or XML), or its Function URL request",
                          description="A CI job callback body like events/callbacks/*. With --funcurl it is wrapped "
                                      "in the Function URL request the callback function receives, with a valid token "
                                      "for --record-id signed with COS_MATTING_CALLBACK_KEYS.")
    cb.add_argument("--job-id", default=PLACEHOLDER_JOB, help="JobId (default: the library's placeholder)")
    cb.add_argument("--record", metavar="RECORD_ID|KEY",
                    help="build the callback of this record's job (or of the current version of the object KEY) from the local cloud (its job id, keys and state), "
                         "wrapped in a Function URL request with a valid token (needs COS_MATTING_ENDPOINT or --local, "
                         "and COS_MATTING_CALLBACK_KEYS); `cos-matting status KEY --json` shows record ids")
    cb.add_argument("--state", choices=sorted(STATES), default=None,
                    help="job state (default: Success, or with --record the job's state in CI)")
    cb.add_argument("--format", choices=("json", "xml"), default="json", help="body format (default: %(default)s)")
    cb.add_argument("--array", action="store_true", help="JobsDetail as an array (CI sends either)")
    cb.add_argument("--bucket", default="videos-1250000000", help="input bucket (default: %(default)s)")
    cb.add_argument("--region", default="ap-guangzhou", help="region (default: %(default)s)")
    cb.add_argument("--key", default="input/interview.mp4", help="input object key (default: %(default)s)")
    cb.add_argument("--output-key", help="output object (default: matting/<stem>.mask.mp4)")
    cb.add_argument("--record-id", default="RECORD", help="record id in UserData cm:<id> and the token (default: %(default)s)")
    cb.add_argument("--funcurl", action="store_true",
                    help="wrap the body in a Function URL request event (query rid/exp/t)")
    add_env_options(cb)
    cb.set_defaults(func=run_callback)


# -- COS ------------------------------------------------------------------------------------------

def cos_event(bucket: str, keys: List[str], size: int = 1048576, etag: Optional[str] = None,
              region: str = "ap-guangzhou", event_name: str = "cos:ObjectCreated:Put",
              content_type: Optional[str] = None, event_time: Optional[int] = None,
              function: str = "cos-matting-submit", source_ip: str = "203.0.113.7") -> Dict[str, Any]:
    from shared.events import Upload, build_event

    match = re.fullmatch(r"([a-z0-9-]+)-(\d+)", bucket)
    if not match:
        raise UsageError(f"--bucket {bucket!r}: expected NAME-APPID, e.g. videos-1250000000")
    if not event_name.startswith(("cos:ObjectCreated:", "cos:ObjectRemove:")):
        raise UsageError(f"--event-name {event_name!r}: expected cos:ObjectCreated:* or cos:ObjectRemove:*")
    if size < 0:
        raise UsageError("--size must be >= 0")
    appid = match.group(2)
    when = int(time.time()) if event_time is None else event_time
    ups = []
    for key in keys:
        key = key.lstrip("/")
        if not key:
            raise UsageError("--key must not be empty")
        tag = etag or hashlib.md5(f"{bucket}/{key}".encode()).hexdigest()
        ctype = content_type or mimetypes.guess_type(key)[0] or "application/octet-stream"
        ups.append(Upload(bucket=bucket, appid=appid, region=region, key=key, etag=tag.strip('"'), size=size,
                          event_name=event_name, event_time=when, content_type=ctype))
    queue = f"qcs:0:scf:{region}:appid/{appid}:default.{function}.$LATEST"
    event = build_event(ups, source_ip=source_ip, queue=queue)
    short = SHORT_REGION.get(region, region)
    for record in event["Records"]:
        record["cos"]["cosBucket"].update(region=short, cosRegion=short, s3Region=region)
        record["cos"]["cosObject"]["meta"]["x-cos-request-id"] = base64.b64encode(uuid.uuid4().bytes).decode()
    return event


def run_cos(args: argparse.Namespace) -> int:
    event = cos_event(args.bucket, args.keys, args.size, args.etag, args.region, args.event_name,
                      args.content_type, args.event_time, args.function, args.source_ip)
    print(dump_json(event))
    return 0


# -- callbacks ------------------------------------------------------------------------------------

def callback_body(job_id: str = PLACEHOLDER_JOB, state: str = "Success", bucket: str = "videos-1250000000",
                  region: str = "ap-guangzhou", key: str = "input/interview.mp4", output_key: Optional[str] = None,
                  record_id: str = "RECORD", array: bool = False) -> Dict[str, Any]:
    """The TaskFinish body as a dict of strings (the JSON CI sends is converted from its XML)."""
    import posixpath

    stem = posixpath.splitext(posixpath.basename(key))[0] or "output"
    output_key = output_key or f"matting/{stem}.mask.mp4"
    code, message = STATES[state]
    operation: Dict[str, Any] = {
        "SegmentVideoBody": {"Mode": "Mask", "SegmentType": "HumanSeg", "BinaryThreshold": "0"},
        "Output": {"Bucket": bucket, "Object": output_key, "Region": region},
        "UserData": f"cm:{record_id}",
        "JobLevel": "0",
    }
    if state == "Success":
        operation["MediaInfo"] = {
            "Format": {"Bitrate": "834736", "Duration": "12.960", "FormatName": "mov,mp4,m4a,3gp,3g2,mj2",
                       "NumStream": "1", "Size": "1424687"},
            "Stream": {"Video": {"AvgFps": "25.000", "CodecName": "h264", "Duration": "12.960", "Fps": "25.000",
                                 "Height": "360", "NumFrames": "324", "Width": "640"}}}
        operation["MediaResult"] = {"OutputFile": {"Bucket": bucket, "ObjectName": output_key, "Region": region}}
    detail = {
        "Code": code, "CreationTime": "2026-11-25T10:00:00+0800", "EndTime": "2026-11-25T10:01:30+0800",
        "Input": {"BucketId": bucket, "Object": key, "Region": region},
        "JobId": job_id, "Message": message, "Operation": operation,
        "QueueId": "p2242ab62c7c94486915508540933a2c6", "StartTime": "2026-11-25T10:00:10+0800",
        "State": state, "Tag": "SegmentVideoBody",
    }
    return {"EventName": "TaskFinish", "JobsDetail": [detail] if array else detail}


def encode_body(body: Dict[str, Any], fmt: str) -> str:
    from shared import xmlcodec

    if fmt == "xml":
        return xmlcodec.dump("Response", body).decode("utf-8")
    return json.dumps(body, indent=2, ensure_ascii=False)


def from_record(args: argparse.Namespace) -> Dict[str, Any]:
    """callback_body() arguments for a record in the local cloud (its job re-read from CI)."""
    from cli.clients import make_clients
    from cli.env import load
    from shared.cloud import CloudError
    from shared.records import RecordStore

    from cli.errors import usage

    env, settings = load(args)
    if not env.get("COS_MATTING_ENDPOINT"):
        raise usage("--record", "builds callbacks for the local cloud only",
                    "pass --local http://127.0.0.1:9000 (or export COS_MATTING_ENDPOINT)")
    clients = make_clients(settings, env)
    rid = args.record
    if not re.fullmatch(r"[0-9a-f]{32}", rid):  # a source key: its current version's record
        version = clients.storage.version(settings.bucket, rid)
        if version is None:
            raise usage(f"--record {rid}", f"neither a record id nor an object in {settings.bucket}",
                        "`cos-matting status` lists both")
        rid = version.record_id
    record, _ = RecordStore.of(settings, clients.storage).load(rid)
    if record is None:
        raise usage(f"--record {args.record}", f"no such record in {settings.rec_bucket}/{settings.records_prefix}",
                    "`cos-matting status --json` lists the record ids")
    if not record.job_id:
        raise usage(f"--record {args.record}", f"the record has no job yet (state {record.state})",
                    "wait for the submit, or run `cos-matting reconcile`")
    state = args.state
    if state is None:
        try:
            state = clients.ci.describe(record.job_id).State
        except CloudError:
            state = record.state
    if state not in STATES:
        raise usage(f"--record {args.record}", f"its job is {state}, not finished: CI calls back only when a job "
                    f"ends", f"pass --state {'|'.join(sorted(STATES))} to send one anyway")
    return {"job_id": record.job_id, "state": state, "bucket": record.source.bucket, "region": settings.region,
            "key": record.source.key, "output_key": (record.output or {}).get("key"), "record_id": record.id,
            "env": env}


def run_callback(args: argparse.Namespace) -> int:
    if args.record:
        found = from_record(args)
        env = found.pop("env")
        body = callback_body(array=args.array, **found)
        args.record_id, args.funcurl = found["record_id"], True
    else:
        env = None
        body = callback_body(args.job_id, args.state or "Success", args.bucket, args.region, args.key,
                             args.output_key, args.record_id, args.array)
    text = encode_body(body, args.format)
    if not args.funcurl:
        sys.stdout.write(text + ("\n" if not text.endswith("\n") else ""))
        return 0
    query = PLACEHOLDER_QUERY
    if args.record_id != "RECORD":
        query = signed_query(env or command_env(args), args.record_id)
    from localcloud.scfevents import callback_request  # lazy: `localcloud` costs ~0.1 s to import

    ctype = "application/xml" if args.format == "xml" else "application/json"
    print(dump_json(callback_request(text, ctype, query)))
    return 0
