"""A webhook receiver for notification tests and the benchmark: verifies every signature,
deduplicates by event id, and can be down, flaky or slow on purpose."""
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from shared import notify


class Webhook:
    """`down_until`: before this time.time() the connection is closed unanswered (a receiver that
    is down); `fail_rate`: that share of answers is 500; `delay`: seconds before answering."""

    def __init__(self, secret, down_until=0.0, fail_rate=0.0, delay=0.0, seed=0):
        self.secret, self.down_until, self.fail_rate, self.delay = secret, down_until, fail_rate, delay
        self.redirect = ""  # set: every POST is answered 302 to this location
        self.gets = 0
        self.rng, self.lock = random.Random(seed), threading.Lock()
        self.accepted = {}  # event id -> (first 2xx time, event)
        self.deliveries = []  # (event id, status, signature ok, received at)
        self.bad_signatures = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.gets += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.redirect:
                    self.send_response(302)
                    self.send_header("Location", outer.redirect)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                now = time.time()
                if now < outer.down_until:
                    self.close_connection = True
                    self.connection.close()  # nothing answers: the sender sees a reset
                    return
                try:
                    notify.verify(outer.secret, self.headers.get(notify.SIGNATURE_HEADER), body)
                    signed = True
                except notify.SignatureError as exc:
                    signed = False
                    outer.bad_signatures.append(str(exc))
                event = json.loads(body)
                if outer.delay:
                    time.sleep(outer.delay)
                with outer.lock:
                    status = 500 if not signed or outer.rng.random() < outer.fail_rate else 200
                    outer.deliveries.append((event["id"], status, signed, now))
                    if status == 200 and event["id"] not in outer.accepted:  # dedupe by the event id
                        outer.accepted[event["id"]] = (now, event)
                answer = b'{"ok": true}' if status == 200 else b'{"error": "try later"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/cos-matting"

    def env(self):
        return {"COS_MATTING_NOTIFY_URL": self.url, "COS_MATTING_NOTIFY_SECRET": self.secret}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
