"""cli/report.py: the demo report's HTML goes through jinja2 with autoescape; what a record carries
(keys, tags, error messages) is text, never markup. The page in Chromium: tests/e2e/test_demo.py."""
import types

from cli.report import job_section, link, write_report

HOSTILE = "<script>alert('x')</script>&"


def record(**kw):
    base = dict(request={"Operation": {"SegmentVideoBody": {"Mode": "Mask", "SegmentType": "HumanSeg"}}},
                state="Failed", job_id=HOSTILE, id="r1", output=None, timings={}, media={},
                error={"Code": "InvalidInput", "Message": HOSTILE}, source=types.SimpleNamespace(key=f"in/{HOSTILE}.mp4"))
    return types.SimpleNamespace(**{**base, **kw})


def test_values_are_escaped_and_links_stay_links(tmp_path):
    clip = {"rel": f"inputs/{HOSTILE}.mp4", "info": {}, "frames": [(f"frames/{HOSTILE}.jpg", 0.5)]}
    html = str(job_section(record(), clip, {}, {HOSTILE: HOSTILE}, {}, {"upload_to_final_s": 1.5}))
    assert "<script>" not in html and html.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;") == 11
    assert "<span class='state bad'>Failed</span>" in html
    assert "<video controls muted preload='auto' width='320' src='inputs/&lt;script&gt;" in html
    assert "<figcaption>0.50 s</figcaption>" in html and "upload → final (measured)</th><td>1.50 s</td>" in html
    assert "<h3>output</h3><p>none</p>" in html and "<tr><td>-</td></tr>" in html  # no output, no output tags
    assert str(link("a'b.mp4", "<b>")) == "<a href='a&#39;b.mp4'>&lt;b&gt;</a>"
    page = write_report(tmp_path / "r.html", [html], {"jobs": 1, "note": HOSTILE}).read_text()
    assert page.count("<section>") == 1 and page.count("<script>") == 1  # the page's own check only
    assert "note: &lt;script&gt;" in page and "left > 0" in page  # the script is the page's, unescaped
