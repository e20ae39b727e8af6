"""An HTML report a person can look at: per job the settings, state, timings, tags and
before/after frames side by side. Written by `cos-matting demo`."""
import html
from pathlib import Path
from typing import Dict, List, Optional

from shared.records import Record


def middle_frame_png(video: Path, png: Path) -> Optional[Path]:
    """Save the middle frame of a video as PNG (None if it cannot be decoded)."""
    import av
    import cv2

    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            total = stream.frames or 0
            target = max(total // 2, 0)
            frame = None
            for i, decoded in enumerate(container.decode(stream)):
                frame = decoded
                if i >= target:
                    break
            if frame is None:
                return None
            cv2.imwrite(str(png), frame.to_ndarray(format="bgr24"))
            return png
    except (av.error.FFmpegError, IndexError, OSError):
        return None


def _kv(data: Dict[str, object]) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in data.items())
    return f"<table class='kv'>{rows}</table>"


def job_section(record: Record, before: Optional[str], after: Optional[str],
                source_tags: Dict[str, str], output_tags: Dict[str, str]) -> str:
    body = ((record.request or {}).get("Operation") or {}).get("SegmentVideoBody") or {}
    settings = {k: v for k, v in body.items() if k in ("Mode", "SegmentType", "BinaryThreshold", "BackgroundLogoUrl")}
    if body.get("Mode") == "Foreground":
        settings["Background"] = f"rgb({body.get('BackgroundRed')}, {body.get('BackgroundGreen')}, {body.get('BackgroundBlue')})"
    if body.get("SegmentType") == "SolidColorSeg":
        settings["Remove"] = f"rgb({body.get('RemoveRed')}, {body.get('RemoveGreen')}, {body.get('RemoveBlue')})"
    state_class = "ok" if record.state == "Success" else "bad"
    frames = "".join(
        f"<figure><img src='{html.escape(src)}' alt='{label}'><figcaption>{label}</figcaption></figure>"
        for label, src in (("before", before), ("after", after)) if src)
    facts = {"job": record.job_id, "output": (record.output or {}).get("key", "-"),
             **{k: v for k, v in (record.media or {}).items()},
             **{k: f"{v:.2f} s" for k, v in (record.timings or {}).items()}}
    if record.error:
        facts["error"] = f"{record.error.get('Code')}: {record.error.get('Message')}"
    return f"""
<section>
  <h2>{html.escape(record.source.key)} <span class='state {state_class}'>{html.escape(record.state)}</span></h2>
  <div class='frames'>{frames or '<p>no frames</p>'}</div>
  <div class='cols'>
    <div><h3>Settings</h3>{_kv(settings)}</div>
    <div><h3>Result</h3>{_kv(facts)}</div>
    <div><h3>Tags</h3><h4>source</h4>{_kv(source_tags)}<h4>output</h4>{_kv(output_tags)}</div>
  </div>
</section>"""


CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} .sub{color:#666;margin-top:0}
section{border:1px solid #ddd;border-radius:8px;padding:1rem 1.2rem;margin:1.2rem 0}
h2{font-size:1.1rem;margin:.2rem 0 .8rem} h3{font-size:.95rem;margin:.4rem 0} h4{font-size:.8rem;margin:.4rem 0;color:#666}
.state{font-size:.8rem;padding:.1rem .5rem;border-radius:4px;margin-left:.5rem}
.ok{background:#d8f5dd;color:#17642a} .bad{background:#fde0de;color:#8a1c12}
.frames{display:flex;gap:1rem;flex-wrap:wrap} figure{margin:0} img{max-width:520px;width:100%;border-radius:4px;background:#eee}
figcaption{font-size:.8rem;color:#666;text-align:center}
.cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:1rem}
table.kv{border-collapse:collapse;font-size:.85rem;width:100%} .kv th{text-align:left;color:#555;font-weight:500;padding:.15rem .6rem .15rem 0;white-space:nowrap;vertical-align:top}
.kv td{padding:.15rem 0;word-break:break-all}
"""


def write_report(path: Path, sections: List[str], summary: Dict[str, object]) -> Path:
    page = f"""<!doctype html><html><head><meta charset='utf-8'><title>cos-matting demo report</title>
<style>{CSS}</style></head><body>
<h1>cos-matting demo</h1>
<p class='sub'>{html.escape(' · '.join(f'{k}: {v}' for k, v in summary.items()))}</p>
{''.join(sections)}
</body></html>"""
    path.write_text(page, encoding="utf-8")
    return path
