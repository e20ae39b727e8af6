"""`cos-matting notify --test`: send a signed sample event to the webhook and show the answer."""
import argparse
import json
import time

from cli.env import add_env_options, load
from cli.errors import EXIT_FAILED, EXIT_OK, failure, usage

DESCRIPTION = """\
Send a signed sample event to the notification webhook (COS_MATTING_NOTIFY_URL, signed with
COS_MATTING_NOTIFY_SECRET) exactly as the functions send a final record's event, and print
the receiver's status and answer. Use it to check a receiver's signature verification
(README "Notifications"). The sample's `type` is "test" and its record id is all zeros.
With --stage S the URL and secret are the deployed stage's own (its functions' settings).

Exit 0 when the receiver answered 2xx, 1 otherwise.
"""


def register(subparsers: "argparse._SubParsersAction") -> None:
    parser = subparsers.add_parser("notify", help="send a signed sample event to the webhook",
                                   description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--test", action="store_true", required=True,
                        help="send a sample event (the only mode for now; required so a typo sends nothing)")
    parser.add_argument("--url", help="send to this URL instead of COS_MATTING_NOTIFY_URL")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_env_options(parser)
    parser.set_defaults(func=run)


def sample_event() -> dict:
    from shared.notify import event
    from shared.records import Record, Source, now_iso

    record = Record(id="0" * 32, state="Success", job_id="s0000000000000000000000000000000", updated_at=now_iso(),
                    submitted_at=now_iso(),
                    source=Source(bucket="videos-1250000000", region="ap-guangzhou", key="input/sample.mp4",
                                  etag="d41d8cd98f00b204e9800998ecf8427e", version_id=""),
                    output={"bucket": "videos-1250000000", "region": "ap-guangzhou",
                            "key": "matting/input/sample.mp4.mask.mp4"})
    return {**event(record), "type": "test", "id": f"evt_test_{int(time.time() * 1000)}"}


def run(args: argparse.Namespace) -> int:
    from shared.notify import post

    _, settings = load(args)
    url = args.url or settings.notify_url
    if args.url and not args.url.startswith(("http://", "https://")):
        raise usage(f"--url {args.url!r}", "expected an http:// or https:// URL")
    if not url:
        raise usage("COS_MATTING_NOTIFY_URL", "not set", "set it (and COS_MATTING_NOTIFY_SECRET) in .env, or pass --url")
    if not settings.notify_secret:
        raise usage("COS_MATTING_NOTIFY_SECRET", "not set: events are always signed",
                    'generate one: python3 -c "import secrets; print(secrets.token_urlsafe(32))"')
    event = sample_event()
    body = json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()
    started = time.monotonic()
    status, answer = post(url, settings.notify_secret.get_secret_value(), body, event["id"])
    elapsed = time.monotonic() - started
    ok = 200 <= status < 300
    if args.json:
        print(json.dumps({"url": url, "event_id": event["id"], "status": status, "ok": ok,
                          "seconds": round(elapsed, 3), "answer": answer}, ensure_ascii=False))
    elif status:
        print(f"sent {event['id']} to {url}: HTTP {status} in {elapsed:.2f}s")
        print(f"answer: {answer or '(empty)'}")
    if not status:
        raise failure(url, f"nothing answered ({answer})", "is the receiver running and the URL right?")
    return EXIT_OK if ok else EXIT_FAILED
