// cos-matting dashboard. Every value from the records goes into the page as text (textContent,
// setAttribute of numbers and presigned URLs), never as HTML: an object key may carry markup.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const poll = 1000 * Number(document.querySelector('meta[name="poll-seconds"]').content || 2);
  if (location.search.includes("token=")) history.replaceState(null, "", location.pathname); // the cookie carries it now
  const $ = (id) => document.getElementById(id);
  const form = $("filters"), body = document.querySelector("#records tbody");
  let rows = [], next = null, paged = false, shown = null, busy = false, seq = 0, readCount = 0;

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function age(s) {
    if (s === null || s === undefined) return "";
    return s < 90 ? Math.round(s) + " s" : s < 5400 ? Math.round(s / 60) + " min" : s < 172800 ? Math.round(s / 3600) + " h" : Math.round(s / 86400) + " d";
  }
  function detailText(r) {
    if (r.output) return r.output;
    if (r.error) return ((r.error.Code || "") + ": " + (r.error.Message || "")).replace(/^: /, "");
    return r.stuck || "";
  }
  function query(extra) {
    const p = new URLSearchParams(new FormData(form));
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return p.toString();
  }
  async function api(path, options) {
    const response = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
    const data = await response.json().catch(() => ({error: response.statusText}));
    if (!response.ok) throw new Error(data.error || response.status);
    return data;
  }
  function renderRows() {
    body.replaceChildren(...rows.map((r) => {
      const tr = el("tr");
      tr.dataset.record = r.record_id;
      tr.append(el("td", r.key || r.record_id, "key"), el("td", r.state, "state-" + r.state), el("td", r.job_id || "-"),
                el("td", r.attempts), el("td", age(r.age_s)), el("td", detailText(r)));
      if (r.state === "NoRecord") tr.title = "uploaded, never became a job: `cos-matting backfill` (or retry KEY) submits it";
      else tr.addEventListener("click", () => openRecord(r.record_id));
      return tr;
    }));
    $("more").hidden = !next;
    $("status").textContent = rows.length ? rows.length + " record(s) shown" + (next ? ", more below" : "")
      : next ? "none among the first " + readCount + " records read: more reads below" : "no records in this view";
  }
  async function load(more, polled) {
    if (polled && busy) return;  // a poll waits for the load in flight; a change of filters never does
    const mine = ++seq;
    busy = true;
    try {
      const data = await api("/api/records?" + query(more ? {after: next} : {}));
      if (mine !== seq) return;  // answered after a newer request: stale
      rows = more ? rows.concat(data.rows) : data.rows;
      readCount = more ? readCount + data.read : data.read;
      next = data.next;
      paged = !!more;
      renderRows();
      $("live").className = "live";
      $("live").textContent = "live, " + new Date().toLocaleTimeString();
    } catch (e) {
      $("live").className = "live stale";
      $("live").textContent = "not updating: " + e.message;
    } finally { if (mine === seq) busy = false; }
  }
  function drawChart(perMinute) {
    const svg = $("chart"), ns = "http://www.w3.org/2000/svg", w = 600, h = 120, pad = 16;
    const series = ["claimed", "finished"].map((name) => [name, perMinute[name] || []]);
    const top = Math.max(1, ...series.flatMap(([, v]) => v));
    const nodes = series.map(([name, values]) => {
      const line = document.createElementNS(ns, "polyline");
      line.setAttribute("class", name);
      line.setAttribute("points", values.map((v, i) => [pad + i * (w - 2 * pad) / Math.max(1, values.length - 1),
                                                        h - pad - v * (h - 2 * pad) / top].join(",")).join(" "));
      return line;
    });
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 2); label.setAttribute("y", 10);
    label.textContent = top + "/min";
    const axis = document.createElementNS(ns, "text");
    axis.setAttribute("x", 2); axis.setAttribute("y", h - 2);
    axis.textContent = "-60 min";
    const now = document.createElementNS(ns, "text");
    now.setAttribute("x", w - 24); now.setAttribute("y", h - 2);
    now.textContent = "now";
    svg.replaceChildren(...nodes, label, axis, now);
  }
  async function stats() {
    try {
      const s = await api("/api/stats");
      if (s.computing) return;
      $("totals").replaceChildren(...[["records", s.records], ["claimed", s.claimed], ["submitted", s.submitted],
        ["running", s.running], ["finished", s.final], ["in the open index", s.open_index]].map(([name, value]) => {
        const box = el("div"); box.append(el("b", value), el("span", name)); return box;
      }));
      drawChart(s.per_minute);
    } catch (e) { /* the rows' poll shows the problem */ }
  }
  function field(dl, name, value) {
    if (value === null || value === undefined || value === "") return;
    dl.append(el("dt", name), el("dd", typeof value === "object" ? JSON.stringify(value) : value));
  }
  async function openRecord(rid) {
    const r = await api("/api/record/" + encodeURIComponent(rid));
    shown = r;
    $("detail").hidden = false;
    $("d-key").textContent = r.key || r.record_id;
    const dl = $("d-fields");
    dl.replaceChildren();
    for (const [name, value] of [["state", r.state], ["record", r.record_id], ["job", r.job_id], ["attempt", r.attempt],
      ["output", r.output], ["error", r.error && ((r.error.Code || "") + ": " + (r.error.Message || ""))],
      ["retry hint", r.retry], ["stuck", r.stuck], ["claimed", r.claimed_at], ["submitted", r.submitted_at],
      ["updated", r.updated_at], ["timings (s)", r.timings], ["size", r.size]]) field(dl, name, value);
    $("d-timeline").replaceChildren(...r.timeline.map((t) => el("li",
      "attempt " + t.attempt + ": " + t.stage + (t.generation > 1 ? " (takeover " + t.generation + ")" : "") + " at " + t.at)));
    $("d-notes").replaceChildren(...(r.notes || []).map((n) => el("li", n)));
    $("retry").disabled = !r.can_retry;
    $("cancel").disabled = !r.can_cancel;
    $("d-result").textContent = "";
    for (const which of ["source", "output"]) {
      const video = $("v-" + which);
      if (r.media[which]) video.setAttribute("src", r.media[which]); else video.removeAttribute("src");
    }
    $("v-output-cap").textContent = r.media.output ? "output" : "output (none yet)";
  }
  async function act(path, payload, question) {
    if (!window.confirm(question)) { $("d-result").textContent = "not done"; return; }
    try {
      const out = await api(path, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                                   body: JSON.stringify(payload)});
      await openRecord(shown.record_id);
      $("d-result").textContent = out.outcome + (out.detail ? ": " + out.detail : "");
      load(false);
    } catch (e) { $("d-result").textContent = "failed: " + e.message; }
  }
  $("retry").addEventListener("click", () => act("/api/retry", {record_id: shown.record_id},
    "Retry " + (shown.key || shown.record_id) + " as attempt " + (shown.attempt + 1) + "?"));
  $("cancel").addEventListener("click", () => act("/api/cancel", {job_id: shown.job_id},
    "Cancel job " + shown.job_id + " of " + (shown.key || shown.record_id) + "?"));
  $("close").addEventListener("click", () => { $("detail").hidden = true; shown = null; });
  $("more").addEventListener("click", () => load(true));
  form.addEventListener("change", () => load(false));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(false); });
  load(false);
  stats();
  setInterval(() => {
    if (!paged) load(false, true);
    else $("live").textContent = "paused while you page (change a filter to go live again)";
  }, poll);
  setInterval(stats, 5000);
})();
