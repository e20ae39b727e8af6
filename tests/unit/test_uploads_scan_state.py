"""The saved state of the "never became a job" scan (cli/uploads_scan.py) when two processes step it at
once: the dashboard's background step every few seconds and a `status` in another terminal."""
import threading

from cli import uploads_scan


def test_concurrent_saves_never_fail_and_leave_a_whole_state(tmp_path):
    path = str(tmp_path / "cos-matting" / "uploads-videos-1250000000-cloud.json")
    errors, start = [], threading.Barrier(4)

    def saver(n):
        start.wait()
        for i in range(300):
            try:
                uploads_scan.save_state(path, uploads_scan.ScanState(read=n * 1000 + i, missing={"k": {"n": n}}))
            except OSError as exc:  # one writer's temporary file renamed away by another
                errors.append(repr(exc))

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert errors == []
    state = uploads_scan.load_state(path)
    assert state.read % 1000 == 299 and state.missing == {"k": {"n": state.read // 1000}}  # one writer's last, whole
    assert [p.name for p in (tmp_path / "cos-matting").iterdir()] == ["uploads-videos-1250000000-cloud.json"]
