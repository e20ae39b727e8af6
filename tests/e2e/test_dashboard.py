"""`cos-matting dashboard` as a user meets it: the installed command against the local cloud, the page
driven in headless Chromium over the DevTools protocol (cli/browser.Chromium), the guards probed
with plain HTTP."""
import http.client
import json
import queue
import re
import subprocess
import threading
import urllib.parse
from pathlib import Path

import pytest

from cli import browser
from helpers import BUCKET, ROOT, put, sdk_client, wait_for
from .cli_support import SCRIPT, cli_env, run_cli, script_env  # noqa: F401 (fixture)
from .test_demo import chromium_or_skip

EVIL = 'input/<img src=x onerror="window.pwned=1"><script>window.pwned=2</script>.mp4'


@pytest.fixture
def dashboard(cli_env, tmp_path):
    """The installed command on a free port: (base URL, token)."""
    proc = subprocess.Popen([str(SCRIPT), "dashboard", "--port", "0", "--poll", "0.5"],
                            env=script_env(cli_env, XDG_CACHE_HOME=str(tmp_path / "cache")), cwd=str(ROOT),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        line = lines.get(timeout=30)
    except queue.Empty:
        proc.kill()
        raise AssertionError(f"dashboard printed nothing: {proc.stderr.read()}") from None
    match = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=(\S+)", line)
    assert match, line
    yield match.group(1), match.group(2)
    proc.terminate()
    proc.wait(timeout=10)
    assert match.group(2) not in proc.stderr.read()  # never logged (werkzeug's request lines would)


def request(base, path, method="GET", headers=None, body=None, answer=None):
    """(status, body) of one plain HTTP request; `answer` (a dict) gets the response headers."""
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    if answer is not None:
        answer.update(response.getheaders())
    return response.status, response.read()


def test_requests_without_the_token_from_another_origin_or_without_csrf_are_refused(dashboard):
    base, token = dashboard
    headers = {}
    assert request(base, f"/?token={token}", answer=headers)[0] == 200
    assert f"={token};" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    headers = {}
    assert request(base, "/?token=guess", answer=headers)[0] == 403 and "Set-Cookie" not in headers
    assert request(base, f"/api/records?token={token}")[0] == 200
    for path in ("/", "/api/records", "/api/stats", "/static/dashboard.js", f"/?token={token[:-1]}x"):
        assert request(base, path)[0] == 403, path
    origin = {"Origin": "http://evil.example"}
    assert request(base, f"/api/records?token={token}", headers=origin)[0] == 403
    assert request(base, f"/api/records?token={token}", headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert request(base, f"/api/records?token={token}", headers={"Host": "evil.example:80"})[0] == 403  # rebinding
    cookie = {"Cookie": f"cos_matting_dashboard_{urllib.parse.urlsplit(base).port}={token}"}
    assert request(base, "/api/stats", headers=cookie)[0] == 200  # the cookie alone is enough to read
    post = {**cookie, "Origin": base, "Content-Type": "application/json"}
    body = json.dumps({"job_id": "j" * 32})
    assert request(base, "/api/cancel", "POST", post, body)[0] == 403  # no CSRF token
    status, page = request(base, f"/?token={token}")
    csrf = re.search(rb'name="csrf-token" content="([0-9a-f]+)"', page).group(1).decode()
    assert request(base, "/api/cancel", "POST", {**post, "Origin": "http://evil.example", "X-CSRF-Token": csrf},
                   body)[0] == 403
    status, answer = request(base, "/api/cancel", "POST", {**post, "X-CSRF-Token": csrf}, body)
    assert status == 200 and json.loads(answer)["outcome"].startswith("failed:")  # reached cancel_one: no such job


ROW_C = "[...document.querySelectorAll('#records tr')].find(tr => tr.textContent.includes('input/c.mp4'))"


def view(page, name):
    page.eval(f"(v => {{ v.value = '{name}'; v.dispatchEvent(new Event('change', {{bubbles: true}})); }})"
              "(document.querySelector('select[name=view]'))")


@pytest.mark.slow
def test_the_page_lists_updates_retries_cancels_and_shows_keys_as_text(cli_env, capsys, dashboard, tmp_path):
    binary = chromium_or_skip()
    base, token = dashboard
    client = sdk_client(cli_env)
    from localcloud.matting.samples import make_samples

    clip = Path(make_samples(str(tmp_path / "samples"))["person"]).read_bytes()
    for key in ("input/a.mp4", EVIL):
        put(client, key)
    put(client, "input/b.mp4", clip)  # a real clip: the page's player must load it from COS
    assert run_cli(capsys, "backfill", "--no-callback", "--prefix", "input/", "--no-progress")[0] == 0
    jobs = {j.Input.Object: j.JobId for j in cli_env.list_jobs(BUCKET)}
    cli_env.set_job_state(BUCKET, jobs["input/b.mp4"], "Failed", code="InvalidInput", message="not a video")
    assert run_cli(capsys, "reconcile", "--older-than", "0", "--no-sweep")[0] == 0  # records the failure

    with browser.Chromium(binary, width=1400, height=1000) as page:
        page.goto(f"{base}/?token={token}")
        page.wait("document.querySelectorAll('#records tbody tr').length === 2")  # the open records: a and EVIL
        page.eval("window.sameDocument = true")
        texts = page.eval("[...document.querySelectorAll('#records td.key')].map(td => td.textContent)")
        assert EVIL in texts  # the key's markup is text: no element made of it, no script run
        assert page.eval("document.querySelectorAll('#records img, #records script').length") == 0
        assert page.eval("window.pwned === undefined") is True
        assert "token" not in page.eval("location.href")  # dropped from the address bar; the cookie carries it

        # a new upload appears without a reload: first as one that never became a job (no trigger here),
        # then, once backfill made its job, as Submitted
        put(client, "input/c.mp4")
        page.wait(f"{ROW_C}?.children[1].textContent === 'NoRecord'", message=f"{ROW_C}?.textContent")
        assert run_cli(capsys, "backfill", "--no-callback", "--prefix", "input/", "--no-progress")[0] == 0
        page.wait(f"{ROW_C}?.children[1].textContent === 'Submitted'", message=f"{ROW_C}?.textContent")
        assert page.eval("window.sameDocument") is True

        cancel_asks_first(page, cli_env, jobs["input/a.mp4"])
        retry_makes_a_new_attempt(page, cli_env, capsys)
        output_beside_source(page, cli_env, capsys)
        page.wait("document.querySelectorAll('#chart polyline').length === 2")
        assert page.console == []
        assert page.screenshot(tmp_path / "dashboard.png").stat().st_size > 20_000  # docs/dashboard.png is one


def cancel_asks_first(page, cloud, job_id):
    """Answered no, the job runs on; yes, it is cancelled and recorded."""
    page.eval("[...document.querySelectorAll('#records tr')].find(tr => tr.textContent.includes('input/a.mp4')).click()")
    page.wait("document.getElementById('d-key').textContent === 'input/a.mp4' && !document.getElementById('cancel').disabled")
    page.dialog_answer = False
    page.eval("document.getElementById('cancel').click()")
    page.wait("document.getElementById('d-result').textContent === 'not done'")
    assert page.dialogs == [f"Cancel job {job_id} of input/a.mp4?"]
    assert cloud.get_job(BUCKET, job_id).State == "Submitted"
    page.dialog_answer = True
    page.eval("document.getElementById('cancel').click()")
    page.wait("document.getElementById('d-result').textContent === 'cancelled'",
              message="document.getElementById('d-result').textContent")
    assert len(page.dialogs) == 2 and cloud.get_job(BUCKET, job_id).State == "Cancel"


def retry_makes_a_new_attempt(page, cloud, capsys):
    """The failed view: the record's error and retry hint, its source playable; retry makes attempt 2."""
    view(page, "failed")
    page.wait("[...document.querySelectorAll('#records td.key')].map(td => td.textContent).join() === 'input/b.mp4'")
    page.eval("document.querySelector('#records tbody tr').click()")
    page.wait("document.getElementById('d-key').textContent === 'input/b.mp4' && !document.getElementById('retry').disabled")
    fields = page.eval("document.getElementById('d-fields').textContent")
    assert "InvalidInput: not a video" in fields and "new-input" in fields
    assert page.eval("document.getElementById('d-timeline').children.length") == 3  # claim, submitted, final
    source = page.eval("document.getElementById('v-source').src")
    assert re.match(r"http://videos-1250000000\.cos\.ap-guangzhou\.localhost:\d+/input/b\.mp4\?q-sign-algorithm=sha1",
                    source)
    page.wait("document.getElementById('v-source').readyState >= 1",  # HAVE_METADATA: fetched and decoded
              message="document.getElementById('v-source').error?.message")
    before = len(cloud.list_jobs(BUCKET))
    page.eval("document.getElementById('retry').click()")
    page.wait("document.getElementById('d-result').textContent.startsWith('submitted')")
    assert page.dialogs[-1] == "Retry input/b.mp4 as attempt 2?"
    assert len(cloud.list_jobs(BUCKET)) == before + 1
    shown = run_cli(capsys, "status", "input/b.mp4", "--json", "--no-uploads")[1]
    assert json.loads(shown)["records"][0]["attempts"] == 2
    page.wait("document.getElementById('d-timeline').children.length === 5")  # attempt 2: claim, submitted


def output_beside_source(page, cloud, capsys):
    """A finished record's output beside its source, both from COS through presigned URLs."""
    job_c = next(j.JobId for j in cloud.list_jobs(BUCKET) if j.Input.Object == "input/c.mp4")
    cloud.set_job_state(BUCKET, job_c, "Success")  # CI writes a (fake) output
    assert run_cli(capsys, "reconcile", "--older-than", "0", "--no-sweep")[0] == 0
    view(page, "finished")
    page.wait(f"{ROW_C}?.children[1].textContent === 'Success'", message=f"{ROW_C}?.textContent")
    page.eval(f"{ROW_C}.click()")
    page.wait("document.getElementById('d-key').textContent === 'input/c.mp4' && "
              "document.getElementById('v-output').src !== ''")
    for which, key in (("source", "input/c.mp4"), ("output", "matting/input/c.mp4.mask.mp4")):
        url = urllib.parse.urlsplit(page.eval(f"document.getElementById('v-{which}').src"))
        assert url.hostname == "videos-1250000000.cos.ap-guangzhou.localhost" and url.path == f"/{key}"
        status, content = request(cloud.url, f"{url.path}?{url.query}", headers={"Host": url.netloc})
        assert status == 200 and content == cloud.bucket(BUCKET).read(key), which


def test_usage_mistakes_are_one_line_and_exit_2(cloud, tmp_path):
    import socket

    from .cli_support import run_script

    env = script_env(cloud, XDG_CACHE_HOME=str(tmp_path / "cache"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for argv, needle in ((["--port", str(port)], f"--port {port}: cannot listen there"),
                             (["--port", "70000"], "--port 70000: a port 0-65535"),
                             (["--poll", "0.1"], "--poll 0.1: at least 0.5 seconds")):
            result = run_script(["dashboard", *argv], env, timeout=60)
            assert result.returncode == 2 and needle in result.stderr, result.stderr
            assert len(result.stderr.strip().splitlines()) == 1


def test_views_are_paged_from_a_cursor_and_a_filtered_page_stops_at_its_read_budget(cloud, monkeypatch):
    """30 finished records (3 Failed), pages of 10: the finished view's pages follow each other without a
    gap or a repeat; the failed view reads at most READ_BUDGET records per answer, then gives its cursor."""
    from cli import dashboard
    from cli.clients import ThreadClients
    from helpers import function_env, settings_for
    from shared.identity import ObjectVersion
    from shared.records import Record, RecordStore, Source

    settings = settings_for(cloud)
    clients = ThreadClients(settings, function_env(cloud))
    store = RecordStore.of(settings, clients.get().storage)
    monkeypatch.setattr(dashboard, "PAGE", 10)
    for i in range(30):
        version = ObjectVersion(BUCKET, f"archived/clip-{i:03d}.mp4", f"{i:032x}", 1000, 1_700_000_000 + i)
        record = Record(id=version.record_id, source=Source.of(version, settings.region), state="Submitted",
                        job_id=f"s{i:031x}")
        store.claim(record)
        final = {"state": "Failed", "error": {"Code": "InvalidInput", "Message": "x"}} if i % 10 == 0 else \
            {"state": "Success", "output": {"key": f"matting/{i}.mp4"}}
        store.advance(record.model_copy(update=final))
    for i in range(15):  # open: claimed, no job yet
        version = ObjectVersion(BUCKET, f"input/open-{i:03d}.mp4", f"{i + 100:032x}", 1000, 1_700_000_000 + i)
        store.claim(Record(id=version.record_id, source=Source.of(version, settings.region)))
    board = dashboard.Dashboard(settings, function_env(cloud), clients)
    first = board.view("open")
    second = board.view("open", after=first["next"])
    assert len(first["rows"]) == 10 and len(second["rows"]) == 5 and second["next"] is None
    assert sorted(r["key"] for r in first["rows"] + second["rows"]) == [f"input/open-{i:03d}.mp4" for i in range(15)]
    seen, after = [], ""
    while True:
        page = board.view("finished", after=after, since="all")
        assert len(page["rows"]) <= dashboard.PAGE
        seen += [r["record_id"] for r in page["rows"]]
        if not page["next"]:
            break
        after = page["next"]
    assert len(seen) == len(set(seen)) == 30 and seen == sorted(seen)
    monkeypatch.setattr(dashboard, "READ_BUDGET", 8)
    first = board.view("failed", since="all")
    assert first["read"] == 8 and first["next"] and all(r["state"] == "Failed" for r in first["rows"])
    rest, after = [], first["next"]
    while after:
        page = board.view("failed", after=after, since="all")
        assert page["read"] <= 8
        rest, after = rest + page["rows"], page["next"]
    assert len(first["rows"]) + len(rest) == 3
    keys, after = [], ""
    while True:
        page = board.view("finished", after=after, prefix="archived/clip-00", since="all")
        keys, after = keys + [r["key"] for r in page["rows"]], page["next"]
        if not after:
            break
    assert sorted(keys) == [f"archived/clip-{i:03d}.mp4" for i in range(10)]
    assert [r["record_id"] for r in board.search(seen[7])["rows"]] == [seen[7]]  # by record id, as `status ID`
    # totals and records per minute, from listings: all 45 written within the last minute
    stats = wait_for(lambda: (lambda s: s if "records" in s else None)(board.stats()), timeout=30)
    assert (stats["records"], stats["claimed"], stats["final"], stats["open_index"]) == (45, 15, 30, 15)
    assert sum(stats["per_minute"]["claimed"]) == 45 and sum(stats["per_minute"]["finished"]) == 30
    assert stats["per_minute"]["finished"][-1] + stats["per_minute"]["finished"][-2] == 30  # now, not an hour ago


def test_a_prefix_search_reads_only_the_records_it_shows(cloud, cos_client, monkeypatch):
    """A search by key prefix answers at most PAGE * 4 rows and reads no more records than that (a
    listing and a GET each): a short prefix over a big bucket must not read a thousand records."""
    from cli import dashboard
    from cli.clients import ThreadClients
    from helpers import function_env, settings_for
    from shared.identity import ObjectVersion
    from shared.records import Record, RecordStore, Source

    settings = settings_for(cloud)
    clients = ThreadClients(settings, function_env(cloud))
    store = RecordStore.of(settings, clients.get().storage)
    monkeypatch.setattr(dashboard, "PAGE", 2)  # 8 rows at most
    for i in range(12):
        put(cos_client, f"input/many/clip-{i:02d}.mp4")
    page, _ = clients.get().storage.list(BUCKET, "input/many/", "")
    for obj in page:
        version = ObjectVersion.from_listing(BUCKET, obj)
        store.claim(Record(id=version.record_id, source=Source.of(version, settings.region), state="Submitted"))
    board = dashboard.Dashboard(settings, function_env(cloud), clients)
    before = sum(cloud.requests.values())
    found = board.search("input/many/")
    spent = sum(cloud.requests.values()) - before
    assert len(found["rows"]) == 8 and all(r["key"].startswith("input/many/clip-") for r in found["rows"])
    assert spent <= 3 + 8 * 2, spent  # CI describe, HEAD, the prefix listing; then a listing and a GET per row


def test_another_deployments_record_offers_no_retry_or_cancel_and_its_retry_names_the_stage(cloud):
    """One records store, two stages: dev's page shows prod's Failed record with its Retry button off (the
    retry would be refused: records.not_ours) and prod's running one with Cancel off (cancel refuses another
    deployment's job); a retry posted anyway is refused naming `--stage prod`, nothing written; prod's page
    offers both."""
    from cli import dashboard
    from cli.clients import ThreadClients
    from helpers import function_env, settings_for
    from shared.identity import ObjectVersion
    from shared.records import Record, RecordStore, Source

    boards = {}
    for stage in ("prod", "dev"):
        env = function_env(cloud, COS_MATTING_DEPLOYMENT=f"cos-matting-{stage}")
        settings = settings_for(cloud, COS_MATTING_DEPLOYMENT=f"cos-matting-{stage}")
        boards[stage] = dashboard.Dashboard(settings, env, ThreadClients(settings, env))
    prod = boards["prod"]
    store = RecordStore.of(prod.settings, prod.clients.get().storage)
    version = ObjectVersion(BUCKET, "input/take.mp4", "a" * 32, 1000, 1_700_000_000)
    record = Record(id=version.record_id, source=Source.of(version, prod.settings.region), state="Submitted",
                    job_id="j" * 32, deployment="cos-matting-prod")
    store.claim(record)
    store.advance(record.model_copy(update={"state": "Failed", "error": {"Code": "InternalError", "Message": "x"}}))
    stages = sorted(s.key for s in store.stages(record.id))
    assert prod.record(record.id)["can_retry"] is True
    assert boards["dev"].record(record.id)["can_retry"] is False
    running = Record(id=ObjectVersion(BUCKET, "input/run.mp4", "b" * 32, 1000, 1_700_000_000).record_id,
                     source=Source.of(ObjectVersion(BUCKET, "input/run.mp4", "b" * 32, 1000, 1_700_000_000),
                                      prod.settings.region), state="Submitted", job_id="k" * 32,
                     deployment="cos-matting-prod")
    store.claim(running)
    store.advance(running)
    assert prod.record(running.id)["can_cancel"] is True and boards["dev"].record(running.id)["can_cancel"] is False
    row = boards["dev"].retry(record.id)
    assert (row["outcome"], row["detail"]) == ("failed:not-ours", f"record {record.id} belongs to deployment "
                                               "cos-matting-prod, not cos-matting-dev: run dashboard with --stage prod")
    assert sorted(s.key for s in store.stages(record.id)) == stages and cloud.list_jobs(BUCKET) == []
