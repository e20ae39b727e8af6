"""Plumbing for the CI tests (no tests here): a job in the SDK's dict form, creating it, and an
HTTP receiver that records the callbacks the local cloud POSTs."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from helpers import BUCKET, REGION


def job_dict(key="input/test.mp4", out="matting/test.mp4", level=0, user_data="cm:abc", **extra):
    jobs = {"Tag": "SegmentVideoBody", "Input": {"Object": key},
            "Operation": {"SegmentVideoBody": {"Mode": "Mask", "SegmentType": "HumanSeg"},
                          "Output": {"Region": REGION, "Bucket": BUCKET, "Object": out},
                          "UserData": user_data, "JobLevel": str(level)}}
    jobs.update(extra)
    return jobs


def create(client, **kw):
    return client.ci_create_media_jobs(Bucket=BUCKET, Jobs=job_dict(**kw))["JobsDetail"][0]


class Receiver:
    """A tiny HTTP server recording what is POSTed to it; answers `statuses` in turn, then 200."""

    def __init__(self, statuses=()):
        self.bodies, self.statuses, self.lock = [], list(statuses), threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    status = outer.statuses.pop(0) if outer.statuses else 200
                    outer.bodies.append((status, self.headers["Content-Type"], self.path, body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cb?token=t1"

    def ok_bodies(self):
        return [b for s, _, _, b in self.bodies if s == 200]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
