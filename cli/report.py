"""An HTML report a person can look at, written by `cos-matting demo`: per job the settings,
state, tags, sizes, durations and timings (with units), several frames across the clip before
and after, the input and output videos playable in the page, and links to every file.

The page marks itself: a small script sets `data-media="ok"` on <body> once every image and
video has loaded, or `data-media="broken: <files>"` (and shows a banner) when one did not.
`cli.browser` loads it in headless Chromium and reads that mark.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from markupsafe import Markup

from cli.ui import seconds, size
from shared.records import Record

FRAMES = 4  # frames per clip, spread over its length


def probe(video: Path) -> Dict[str, Any]:
    """Duration (s), frame size, frame rate, codec and file size of a video ({} if unreadable)."""
    import av

    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            duration = (float(stream.duration * stream.time_base) if stream.duration is not None
                        else container.duration / 1e6 if container.duration else None)
            return {"duration_s": duration, "width": stream.codec_context.width,
                    "height": stream.codec_context.height, "fps": float(stream.average_rate or 0) or None,
                    "codec": stream.codec_context.name, "frames": stream.frames or None,
                    "bytes": video.stat().st_size}
    except (av.error.FFmpegError, IndexError, OSError):
        return {}


def frames_across(video: Path, folder: Path, stem: str, count: int = FRAMES) -> List[Tuple[Path, float]]:
    """Save `count` frames spread over the clip (at 1/(2n), 3/(2n), ... of its length) as JPEG;
    returns [(path, time in seconds)]. One decoding pass; [] if the video cannot be decoded."""
    import av
    import cv2

    info = probe(video)
    total = info.get("frames") or int(round((info.get("duration_s") or 0) * (info.get("fps") or 0)))
    if not total:
        return []
    wanted = sorted({min(total - 1, int(total * (2 * i + 1) / (2 * count))) for i in range(count)})
    saved: List[Tuple[Path, float]] = []
    try:
        with av.open(str(video)) as container:
            for index, frame in enumerate(container.decode(video=0)):
                if index == wanted[len(saved)]:
                    path = folder / f"{stem}-{len(saved) + 1}.jpg"
                    cv2.imwrite(str(path), frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, 85])
                    saved.append((path, float(frame.time or 0.0)))
                    if len(saved) == len(wanted):
                        break
    except (av.error.FFmpegError, OSError):
        pass
    return saved


def link(rel: str, text: Optional[str] = None) -> Markup:
    """A link as a table value (escaped here, so the page's autoescape leaves it as it is)."""
    return Markup("<a href='{}'>{}</a>").format(rel, text or rel)


def describe(info: Dict[str, Any]) -> str:
    if not info:
        return "unreadable"
    parts = [size(info.get("bytes")), seconds(info.get("duration_s"))]
    if info.get("width"):
        parts.append(f"{info['width']}x{info['height']} px")
    if info.get("fps"):
        parts.append(f"{info['fps']:.2f} fps")
    if info.get("codec"):
        parts.append(info["codec"])
    return ", ".join(p for p in parts if p != "-")


def media_value(key: str, value: Any) -> str:
    """A MediaInfo figure from the record with its unit: duration 3.02 s, size 66.2 KiB, 25.00 fps."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"{value} px" if key == "resolution" else str(value)
    if "duration" in key:
        return seconds(number)
    if key == "size" or key.endswith("bytes"):
        return size(number)
    if "bitrate" in key:
        return f"{number / 1000:.0f} kbit/s"
    if "fps" in key:
        return f"{number:.2f} fps"
    return str(value)


def job_section(record: Record, source: Dict[str, Any], output: Dict[str, Any], source_tags: Dict[str, str],
                output_tags: Dict[str, str], measured: Dict[str, float]) -> Markup:
    """One job. `source`/`output`: {"rel": path in the report folder, "info": probe(), "frames": [(rel, t)]};
    `measured`: the demo's own sub-second timings (seconds)."""
    body = ((record.request or {}).get("Operation") or {}).get("SegmentVideoBody") or {}
    settings = {k: v for k, v in body.items() if k in ("Mode", "SegmentType", "BinaryThreshold", "BackgroundLogoUrl")}
    if body.get("Mode") == "Foreground":
        settings["Background"] = f"rgb({body.get('BackgroundRed')}, {body.get('BackgroundGreen')}, {body.get('BackgroundBlue')})"
    if body.get("SegmentType") == "SolidColorSeg":
        settings["Remove"] = f"rgb({body.get('RemoveRed')}, {body.get('RemoveGreen')}, {body.get('RemoveBlue')})"
    state_class = "ok" if record.state == "Success" else "bad"
    facts: Dict[str, object] = {"job": record.job_id or "-", "record": record.id}
    if output.get("rel"):
        facts["output"] = link(output["rel"], (record.output or {}).get("key"))
    labels = {"upload_to_submitted_s": "upload → job submitted", "submitted_to_final_s": "job submitted → final",
              "upload_to_final_s": "upload → final"}
    facts.update({f"{labels.get(k, k)} (measured)": f"{v:.2f} s" for k, v in measured.items()})
    ci_labels = {"queued_s": "queued", "running_s": "running", "total_s": "total"}
    facts.update({f"{ci_labels.get(k, k)} (CI, whole seconds)": f"{v:.0f} s" for k, v in (record.timings or {}).items()})
    for key, value in (record.media or {}).items():
        facts[f"output {key} (CI)"] = media_value(key, value)
    if record.error:
        facts["error"] = f"{record.error.get('Code')}: {record.error.get('Message')}"
    clips = [{"title": title, "rel": clip.get("rel"), "meta": describe(clip.get("info") or {}),
              "frames": clip.get("frames") or []} for title, clip in (("input", source), ("output", output))]
    return _template(SECTION).render(key=record.source.key, state=record.state, state_class=state_class,
                                     clips=clips, settings=settings, facts=facts, source_tags=source_tags,
                                     output_tags=output_tags)


# The page's HTML, through jinja2 with autoescape: every value is escaped unless it is Markup
# (links built by `link`, the sections, the page's own CSS and script).
SECTION = """\
{%- macro kv(data) -%}
<table class='kv'>{% for k, v in data.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>
{%- else %}<tr><td>-</td></tr>{% endfor %}</table>
{%- endmacro -%}
{%- macro clip(c) -%}
{% if not c.rel %}<div class='clip'><h3>{{ c.title }}</h3><p>none</p></div>
{%- else %}<div class='clip'><h3>{{ c.title }}: <a href='{{ c.rel }}'>{{ c.rel }}</a></h3><p class='meta'>{{ c.meta }}</p>
<video controls muted preload='auto' width='320' src='{{ c.rel }}'><a href='{{ c.rel }}'>{{ c.rel }}</a></video>
<div class='strip'>{% for src, t in c.frames %}<figure><img src='{{ src }}' alt='{{ c.title }} at {{ "%.2f"|format(t) }} s'>
<figcaption>{{ "%.2f"|format(t) }} s</figcaption></figure>{% else %}<p>no frames</p>{% endfor %}</div></div>
{%- endif %}
{%- endmacro %}
<section>
  <h2>{{ key }} <span class='state {{ state_class }}'>{{ state }}</span></h2>
  <div class='clips'>{% for c in clips %}{{ clip(c) }}{% endfor %}</div>
  <div class='cols'>
    <div><h3>Settings</h3>{{ kv(settings) }}</div>
    <div><h3>Result</h3>{{ kv(facts) }}</div>
    <div><h3>Tags</h3><h4>source</h4>{{ kv(source_tags) }}<h4>output</h4>{{ kv(output_tags) }}</div>
  </div>
</section>"""

PAGE = """<!doctype html><html><head><meta charset='utf-8'><title>cos-matting demo report</title>
<style>{{ css }}</style></head><body>
<h1>cos-matting demo</h1>
<p class='sub'>{{ summary }}</p>
<p id='broken'></p>
<p class='note'>{{ note }}</p>
{% for section in sections %}{{ section }}{% endfor %}
<script>{{ check }}</script>
</body></html>"""


def _template(source: str) -> Any:
    from jinja2 import Environment

    return Environment(autoescape=True).from_string(source)


CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0} .note{background:#fff8dc;padding:.5rem .8rem;border-radius:6px}
#broken{display:none;background:#fde0de;color:#8a1c12;padding:.5rem .8rem;border-radius:6px}
section{border:1px solid #ddd;border-radius:8px;padding:1rem 1.2rem;margin:1.2rem 0}
h2{font-size:1.1rem;margin:.2rem 0 .8rem} h3{font-size:.95rem;margin:.4rem 0} h4{font-size:.8rem;margin:.4rem 0;color:#666}
.state{font-size:.8rem;padding:.1rem .5rem;border-radius:4px;margin-left:.5rem}
.ok{background:#d8f5dd;color:#17642a} .bad{background:#fde0de;color:#8a1c12}
.clips{display:grid;grid-template-columns:1fr 1fr;gap:1rem} .meta{font-size:.8rem;color:#555;margin:.2rem 0}
video{width:100%;max-width:520px;background:#000;border-radius:4px}
.strip{display:flex;gap:.3rem} figure{margin:0;flex:1} img{width:100%;border-radius:3px;background:#eee}
figcaption{font-size:.75rem;color:#666;text-align:center}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}
table.kv{border-collapse:collapse;font-size:.85rem;width:100%} .kv th{text-align:left;color:#555;font-weight:500;padding:.15rem .6rem .15rem 0;white-space:nowrap;vertical-align:top}
.kv td{padding:.15rem 0;word-break:break-all}
"""

# Marks the page once every <img> and <video> has loaded or failed (see the module docstring).
CHECK = """
(function () {
  var items = Array.prototype.slice.call(document.querySelectorAll('img, video'));
  var left = items.length, broken = [];
  function done(el, ok) {
    if (el.dataset.checked) return;
    el.dataset.checked = ok ? 'ok' : 'broken';
    if (!ok) broken.push(el.getAttribute('src'));
    if (--left > 0) return;
    document.body.dataset.media = broken.length ? 'broken: ' + broken.join(', ') : 'ok';
    if (broken.length) {
      var b = document.getElementById('broken');
      b.textContent = 'Could not load: ' + broken.join(', ');
      b.style.display = 'block';
    }
  }
  items.forEach(function (el) {
    if (el.tagName === 'IMG') {
      if (el.complete) done(el, el.naturalWidth > 0);
      el.addEventListener('load', function () { done(el, el.naturalWidth > 0); });
      el.addEventListener('error', function () { done(el, false); });
    } else {
      if (el.readyState >= 2) done(el, el.videoWidth > 0);
      el.addEventListener('loadeddata', function () { done(el, el.videoWidth > 0); });
      el.addEventListener('error', function () { done(el, false); });
    }
  });
  if (!items.length) document.body.dataset.media = 'ok';
})();
"""

HUMANSEG_NOTE = (
    "HumanSeg here is the local cloud's stand-in: MediaPipe's selfie segmentation model (256x256 input, "
    "the whole frame stretched to it). It is made for a close-up of one or two people facing the camera, "
    "filling much of the frame; people small in a wide shot, seen from far away or from behind are often "
    "missed. Cloud Infinite's own HumanSeg model is not this one.")


def write_report(path: Path, sections: List[str], summary: Dict[str, object]) -> Path:
    """Write the page to a temporary file next to `path`, then rename it over `path` (never half a page).
    `sections` are HTML (`job_section`'s); the summary's keys and values are text."""
    page = _template(PAGE).render(css=Markup(CSS), check=Markup(CHECK), note=HUMANSEG_NOTE, sections=map(Markup, sections),
                                  summary=" · ".join(f"{k}: {v}" for k, v in summary.items()))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path
