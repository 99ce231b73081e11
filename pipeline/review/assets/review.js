/* CLAWS review page (written for claws, MIT): the triage table of a scores folder and one video's
 * view (player beside its curve). Data comes from summaries.js and, when a video is opened, from
 * curves/<id>.js, both loaded as <script> tags: the page works from file:// with no server and no
 * network. Colours are those of the PNG plots (claws/pipeline/plots.py).
 *
 * URL hash: "" the triage table; "video=ID" a video's view. Test and screenshot commands, run once
 * the view is ready: "&click=F" dispatches a real click on the curve at fraction F of its time
 * axis and writes the outcome to <html data-seek="...">; "&seek=S" sets the player's time. On the
 * triage table, "sort=KEY" dispatches a real click on that column's header. The triage table sets
 * <html data-rendered-ms> (performance.now()) and <html data-sort="KEY asc|desc"> once drawn, a
 * video's view <html data-video-ms> once its curve is drawn (bench/review.py).
 *
 * Live folders (claws watch): data.run.kind is "stream" (one row per stretch, its curve so far:
 * provisional frames dashed over a grey band, open events outlined; the gaps between stretches on
 * a timeline) or "watch" (one row per stream, linking to the stream's page). In a stretch's view
 * "&event=N" dispatches a real click on event N's row and writes <html data-evidence="...">
 * once its footage plays; the drawn curve is described in <html data-drawn>, the playhead's time
 * in <html data-playhead>. A page built with run.refresh_s reloads itself at that period (not
 * while its video plays), keeping the view, sort, scroll and playhead (sessionStorage); it counts
 * its reloads in <html data-reloads> and says what it restored in <html data-restored>;
 * "&reloads=N" stops it after N reloads (headless Chromium dumps a page only once it settles). */
"use strict";

var CLAWS = (function () {
  var COLORS = {curve: "#1f4e9c", event: "#f28e2b", truth: "#d62728", threshold: "#555555",
                grid: "#e6e8ec", axis: "#444444", playhead: "#111111", provisional: "#7f9bcf"};
  var CLOSED = ["confirmed", "interrupted", "stopped"];  // an event's last status; others are open
  var MARGIN = {left: 44, right: 14, top: 14, bottom: 62};  // bottom: event/truth strips + axis
  var data = null;
  var curves = {};
  var waiting = {};
  var sortKey = "peak", sortDescending = true;
  var view = null;  // the open video view: {id, canvas, video, curve, time, ...}
  var place = null;  // where the page was before it reloaded itself (run.refresh_s), to restore

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) node.appendChild(c); });
    return node;
  }

  function fmt(value, digits) {
    return value === null || value === undefined ? "" : Number(value).toFixed(digits);
  }

  function clock(seconds) {
    var s = Math.max(0, seconds);
    var m = Math.floor(s / 60);
    return m + ":" + (s - 60 * m).toFixed(1).padStart(4, "0");
  }

  function hashParams() {
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }

  function kind() { return data.run.kind || "scores"; }

  function isOpen(e) { return CLOSED.indexOf(e.status) < 0; }

  function statusText(e) { return isOpen(e) ? "open" : e.status; }

  function wallClock(seconds) {  // a wall time (Unix seconds) as the viewer's local time
    if (seconds === null || seconds === undefined) return "";
    var d = new Date(seconds * 1000);
    var pad = function (n) { return String(n).padStart(2, "0"); };
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function setAttr(name, value) { document.documentElement.setAttribute(name, value); }

  /* ---- data, registered by summaries.js and curves/<id>.js ---- */

  function registerSummaries(d) {
    data = d;
    if (kind() === "stream") { sortKey = "stretch"; sortDescending = false; }  // time order
    if (kind() === "watch") { sortKey = "video_id"; sortDescending = false; }
  }

  function registerCurve(c) {
    curves[c.video_id] = c;
    (waiting[c.video_id] || []).forEach(function (done) { done(c); });
    delete waiting[c.video_id];
  }

  function loadCurve(id, done, failed) {
    if (curves[id]) { done(curves[id]); return; }
    var first = !waiting[id];
    (waiting[id] = waiting[id] || []).push(done);
    if (!first) return;
    // a long id's files have a shortened name (claws.data.videos.file_stem), given by the summary
    var summary = data.videos.find(function (v) { return v.video_id === id; });
    var file = (summary && summary.curve_file) || id;
    var script = el("script", {src: "curves/" + encodeURIComponent(file) + ".js"});
    script.onerror = function () { delete waiting[id]; failed(); };
    document.head.appendChild(script);
  }

  /* ---- header: the run's settings, loud when the features come from random weights ---- */

  function liveFacts(run) {
    var facts = kind() === "stream"
      ? [["stream", run.stream], ["state", run.state], ["stretches", String(data.videos.length)]]
      : [["streams", String(data.videos.length)]];
    return facts.concat([
      ["checkpoint", run.checkpoint ? "sha256 " + run.checkpoint.slice(0, 12) + "\u2026" : "not recorded"],
      ["window", String(run.window)], ["threshold", String(run.threshold)],
      ["events", "\u2265 " + run.min_duration_s + " s, gaps \u2264 " + run.merge_gap_s + " s merged"],
      ["page built", wallClock(run.built) + (run.refresh_s ? ", rebuilt every " + run.refresh_s + " s" : "")],
    ]);
  }

  function renderHeader() {
    var run = data.run, top = document.getElementById("top");
    top.textContent = "";
    var facts = kind() !== "scores" ? liveFacts(run) : [
      ["videos", String(data.videos.length)],
      ["checkpoint", run.checkpoint + (run.checkpoint_step ? " (step " + run.checkpoint_step + ")" : "")],
      ["threshold", String(run.threshold)],
      ["events", "\u2265 " + run.min_duration_s + " s, gaps \u2264 " + run.merge_gap_s + " s merged"],
      ["C3D", run.precision],
    ];
    if (run.has_truth) facts.push(["ground truth", "shown in red"]);
    top.appendChild(el("div", {class: "title"}, [
      el("a", {href: "#", class: "brand", text: "CLAWS review"}),
      run.up ? el("a", {href: run.up, class: "up", text: "\u2191 all streams"}) : null,
      el("span", {class: "folder", text: run.folder}),
    ]));
    top.appendChild(el("dl", {class: "facts"}, facts.map(function (f) {
      return el("div", {}, [el("dt", {text: f[0]}), el("dd", {text: f[1]})]);
    })));
    if (run.random_features) {
      top.appendChild(el("div", {class: "banner", text: "RANDOM C3D WEIGHTS: these features are not " +
        "real C3D features; the curves check the plumbing, they say nothing about the footage."}));
    }
    if (run.error) top.appendChild(el("div", {class: "banner", text: "stream failed: " + run.error}));
  }

  /* ---- triage view ---- */

  // A column sorts descending on its first click, or ascending with "ascendingFirst"; videos
  // without a value sort last either way.
  var COLUMNS = [
    {key: "video_id", label: "video", numeric: false},
    {key: "class_name", label: "class", numeric: false},
    {key: "duration_s", label: "duration", numeric: true, show: function (v) { return clock(v.duration_s); }},
    {key: "peak", label: "peak", numeric: true, show: function (v) { return fmt(v.peak, 3); }},
    {key: "peak_s", label: "peak at", numeric: true, show: function (v) { return clock(v.peak_s); }},
    {key: "num_events", label: "events", numeric: true},
    {key: "event_s", label: "event time", numeric: true, show: function (v) { return fmt(v.event_s, 1) + " s"; }},
  ];
  // With ground truth: each annotated video's own frame AUC (its event frames against its other
  // frames), worst first on the first click, so the worst-localized videos are opened first.
  var AUC_COLUMN = {key: "auc", label: "own AUC", numeric: true, ascendingFirst: true,
    title: "the video's own frame AUC: its annotated event frames against its other frames " +
      "(0.5: the curve does not find the event; undefined: anomalous throughout)",
    show: function (v) {
      if (v.auc !== null && v.auc !== undefined) return fmt(v.auc, 3);
      return v.truth_s > 0 ? "undefined" : "";
    }};

  // A stream's page: one row per stretch. The status cell holds the status alone.
  var STRETCH_COLUMNS = [
    {key: "stretch", label: "stretch", numeric: true, ascendingFirst: true, show: function (v) { return v.video_id; }},
    {key: "status", label: "status", numeric: false},
    {key: "started", label: "started", numeric: true, show: function (v) { return wallClock(v.started); }},
    {key: "gap_before_s", label: "gap before", numeric: true, show: function (v) {
      if (v.gap_before_s === null || v.gap_before_s === undefined) return "";
      return gapName(v.gap_kind) + " " + fmt(v.gap_before_s, 1) + " s"; }},
    {key: "duration_s", label: "duration", numeric: true, show: function (v) { return clock(v.duration_s); }},
    {key: "peak", label: "peak", numeric: true, show: function (v) { return fmt(v.peak, 3); }},
    {key: "peak_s", label: "peak at", numeric: true, show: function (v) { return v.peak_s === null ? "" : clock(v.peak_s); }},
    {key: "num_events", label: "events", numeric: true, show: eventCount},
    {key: "event_s", label: "event time", numeric: true, show: function (v) { return fmt(v.event_s, 1) + " s"; }},
  ];
  // A watch folder's page: one row per stream, linking to the stream's page.
  var STREAM_COLUMNS = [
    {key: "video_id", label: "stream", numeric: false},
    {key: "state", label: "state", numeric: false},
    {key: "stretches", label: "stretches", numeric: true},
    {key: "lost_s", label: "lost", numeric: true, show: function (v) { return v.gaps ? fmt(v.lost_s, 1) + " s" : ""; }},
    {key: "duration_s", label: "watched", numeric: true, show: function (v) { return clock(v.duration_s); }},
    {key: "peak", label: "peak", numeric: true, show: function (v) { return fmt(v.peak, 3); }},
    {key: "num_events", label: "events", numeric: true, show: eventCount},
    {key: "event_s", label: "event time", numeric: true, show: function (v) { return fmt(v.event_s, 1) + " s"; }},
    {key: "last", label: "last written", numeric: true, show: function (v) { return wallClock(v.last); }},
    {key: "error", label: "error", numeric: false, show: function (v) { return v.error || ""; }},
  ];

  function gapName(kind) {  // a gap between two stretches: why the stream was not scored
    return {lost: "lost", unwatched: "not watched"}[kind] || kind;
  }

  function eventCount(v) {
    return String(v.num_events) + (v.open_events ? " (" + v.open_events + " open)" : "");
  }

  function columns() {
    if (kind() === "stream") return STRETCH_COLUMNS;
    if (kind() === "watch") return STREAM_COLUMNS;
    return data.run.has_truth ? COLUMNS.concat([AUC_COLUMN]) : COLUMNS;
  }

  function sortedVideos() {
    var key = sortKey, sign = sortDescending ? -1 : 1;
    return data.videos.slice().sort(function (a, b) {
      var x = a[key], y = b[key];
      if (x === y) return a.video_id < b.video_id ? -1 : 1;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sign;
    });
  }

  function drawSparkline(canvas, values, threshold) {
    var ratio = window.devicePixelRatio || 1, w = 160, h = 28;
    canvas.width = w * ratio; canvas.height = h * ratio;
    var ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    var top = values.reduce(function (m, s) { return s > m ? s : m; }, 1);
    var y = function (v) { return h - 2 - (h - 4) * v / top; };
    ctx.strokeStyle = COLORS.threshold; ctx.setLineDash([3, 3]); ctx.lineWidth = 1;
    ctx.beginPath(); ctx.moveTo(0, y(threshold)); ctx.lineTo(w, y(threshold)); ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "rgba(31, 78, 156, 0.15)"; ctx.strokeStyle = COLORS.curve; ctx.lineWidth = 1.3;
    ctx.beginPath(); ctx.moveTo(0, h - 2);
    values.forEach(function (v, i) { ctx.lineTo(values.length > 1 ? w * i / (values.length - 1) : w, y(v)); });
    ctx.lineTo(w, h - 2); ctx.closePath(); ctx.fill();
    ctx.beginPath();
    values.forEach(function (v, i) {
      var x = values.length > 1 ? w * i / (values.length - 1) : w;
      if (i === 0) ctx.moveTo(x, y(v)); else ctx.lineTo(x, y(v));
    });
    ctx.stroke();
  }

  function renderTriage() {
    view = null;
    var main = document.getElementById("main");
    main.textContent = "";
    var noun = {scores: " videos", stream: " stretches", watch: " streams"}[kind()];
    document.title = "CLAWS review: " + (data.run.stream ? data.run.stream + ", " : "") + data.videos.length + noun;
    var shown = columns();
    var head = el("tr", {}, shown.map(function (c) {
      var arrow = c.key === sortKey ? (sortDescending ? " \u25BC" : " \u25B2") : "";
      var th = el("th", {class: c.numeric ? "num sortable" : "sortable", "data-key": c.key, text: c.label + arrow});
      if (c.title) th.title = c.title;
      th.addEventListener("click", function () {
        sortDescending = c.key === sortKey ? !sortDescending : c.numeric && !c.ascendingFirst;
        sortKey = c.key;
        renderTriage();
      });
      return th;
    }).concat([el("th", {text: kind() === "scores" ? "curve (max per stretch; dashed: threshold)" : "curve (dashed: threshold)"})]));
    if (kind() === "stream") main.appendChild(timeline());
    var body = el("tbody");
    var sparks = [];
    sortedVideos().forEach(function (v) {
      var canvas = el("canvas", {class: "spark", width: "160", height: "28"});
      sparks.push([canvas, v.sparkline]);
      var row = el("tr", {class: v.num_events > 0 ? "row flagged" : "row", "data-video": v.video_id},
        shown.map(function (c) {
          return el("td", {class: c.numeric ? "num" : "", text: c.show ? c.show(v) : String(v[c.key] === null ? "" : v[c.key])});
        }).concat([el("td", {}, [canvas])]));
      row.addEventListener("click", function () {
        if (v.href) location.href = v.href;  // a stream of a watch folder: its own page
        else location.hash = "video=" + encodeURIComponent(v.video_id);
      });
      body.appendChild(row);
    });
    main.appendChild(el("table", {class: "triage", id: "triage"}, [el("thead", {}, [head]), body]));
    sparks.forEach(function (s) { drawSparkline(s[0], s[1], data.run.threshold); });
    document.documentElement.setAttribute("data-sort", sortKey + (sortDescending ? " desc" : " asc"));
    document.documentElement.setAttribute("data-rendered-ms", performance.now().toFixed(1));
  }

  // A stream in wall time: its stretches (click one to open it) and the gaps between them.
  function timeline() {
    var spans = data.run.timeline || [];
    var seconds = function (p) { return (p.kind === "stretch" ? p.duration_s : p.gap_s) || 0; };
    var total = spans.reduce(function (t, p) { return t + seconds(p); }, 0) || 1;
    return el("div", {class: "timeline"}, spans.map(function (p) {
      var text = p.kind === "stretch" ? "stretch-" + p.stretch + " " + p.status
        : gapName(p.kind) + (p.gap_s === null ? "" : " " + fmt(p.gap_s, 1) + " s");
      var classes = p.kind === "stretch" ? "stretch " + p.status : p.kind;
      var span = el("div", {class: "span " + classes.replace(/[^A-Za-z0-9 -]/g, "-"),
        style: "flex-grow: " + Math.max(seconds(p) / total, 0.02).toFixed(4), text: text,
        title: text + ": " + wallClock(p.from) + " \u2013 " + wallClock(p.to)});
      if (p.kind === "stretch") {
        span.addEventListener("click", function () { location.hash = "video=stretch-" + p.stretch; });
      }
      return span;
    }));
  }

  function sortByClick(key) {  // test hook "sort=KEY": a real click on the column's header
    var th = document.querySelector('#triage th[data-key="' + key + '"]');
    if (th) th.dispatchEvent(new MouseEvent("click", {bubbles: true}));
  }

  /* ---- video view ---- */

  function plotBox(canvas) {
    var w = canvas.clientWidth, h = canvas.clientHeight;
    return {w: w, h: h, x0: MARGIN.left, x1: w - MARGIN.right, y0: MARGIN.top, y1: h - MARGIN.bottom};
  }

  function drawCurve(v) {
    var c = v.curve, canvas = v.canvas, ratio = window.devicePixelRatio || 1, box = plotBox(canvas);
    var base = document.createElement("canvas");
    base.width = box.w * ratio; base.height = box.h * ratio;
    var ctx = base.getContext("2d");
    ctx.scale(ratio, ratio);
    var duration = Math.max(c.num_frames, 1) / c.fps, top = c.scores.reduce(function (m, s) { return s > m ? s : m; }, 1);
    var xOf = function (t) { return box.x0 + (box.x1 - box.x0) * t / duration; };
    var yOf = function (s) { return box.y1 - (box.y1 - box.y0) * s / top; };
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (var s = 0; s <= top + 1e-9; s += 0.25) {
      ctx.strokeStyle = COLORS.grid; ctx.beginPath(); ctx.moveTo(box.x0, yOf(s)); ctx.lineTo(box.x1, yOf(s)); ctx.stroke();
      ctx.fillText(s.toFixed(2), box.x0 - 6, yOf(s));
    }
    var provisional = (c.provisional || []).map(function (p) { return [p[0] / c.fps, p[1] / c.fps]; });
    provisional.forEach(function (p) {  // frames whose score may still change: a grey band
      ctx.save();
      ctx.fillStyle = "rgba(102, 112, 133, 0.10)";
      ctx.fillRect(xOf(p[0]), box.y0, xOf(p[1]) - xOf(p[0]), box.y1 - box.y0);
      ctx.fillStyle = COLORS.axis; ctx.textAlign = "left"; ctx.textBaseline = "top";
      ctx.fillText("provisional", xOf(p[0]) + 3, box.y0 + 2);
      ctx.restore();
    });
    c.events.forEach(function (e) {  // events shaded behind the curve, as in the PNG
      var open = c.live && isOpen(e);
      ctx.fillStyle = open ? "rgba(242, 142, 43, 0.10)" : "rgba(242, 142, 43, 0.22)";
      ctx.fillRect(xOf(e.start_s), box.y0, xOf(e.end_s) - xOf(e.start_s), box.y1 - box.y0);
      if (open) {  // an open event may still change: outlined, dashed
        ctx.strokeStyle = COLORS.event; ctx.setLineDash([4, 3]); ctx.lineWidth = 1.2;
        ctx.strokeRect(xOf(e.start_s), box.y0 + 0.5, xOf(e.end_s) - xOf(e.start_s), box.y1 - box.y0 - 1);
        ctx.setLineDash([]);
      }
    });
    var strip = function (row, color, label, spans) {  // a band under the axes
      var y = box.y1 + 6 + row * 13;
      ctx.fillStyle = "#f3f4f6"; ctx.fillRect(box.x0, y, box.x1 - box.x0, 9);
      ctx.fillStyle = color;
      spans.forEach(function (p) { ctx.fillRect(xOf(p[0]), y, Math.max(1, xOf(p[1]) - xOf(p[0])), 9); });
      ctx.fillStyle = COLORS.axis; ctx.textAlign = "right"; ctx.fillText(label, box.x0 - 6, y + 5);
    };
    var closed = function (e) { return !(c.live && isOpen(e)); };
    strip(0, COLORS.event, "events", c.events.filter(closed).map(function (e) { return [e.start_s, e.end_s]; }));
    c.events.filter(function (e) { return !closed(e); }).forEach(function (e) {  // open: paler
      ctx.fillStyle = "rgba(242, 142, 43, 0.45)";
      ctx.fillRect(xOf(e.start_s), box.y1 + 6, Math.max(1, xOf(e.end_s) - xOf(e.start_s)), 9);
    });
    if (c.truth) strip(1, COLORS.truth, "truth", c.truth.map(function (p) { return [p[0] / c.fps, p[1] / c.fps]; }));
    var axisY = box.y1 + 6 + (c.truth ? 2 : 1) * 13 + 4;
    ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.fillStyle = COLORS.axis;
    var step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find(function (d) { return duration / d <= 10; }) || 1200;
    for (var t = 0; t <= duration + 1e-9; t += step) ctx.fillText(clock(t), xOf(t), axisY);
    ctx.strokeStyle = COLORS.threshold; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.2;
    ctx.beginPath(); ctx.moveTo(box.x0, yOf(c.threshold)); ctx.lineTo(box.x1, yOf(c.threshold)); ctx.stroke();
    ctx.setLineDash([]); ctx.textAlign = "right"; ctx.textBaseline = "bottom"; ctx.fillStyle = COLORS.threshold;
    ctx.fillText("threshold " + c.threshold, box.x1, yOf(c.threshold) - 2);
    // the curve: final frames solid, provisional ones dashed and paler (each drawn clipped to its
    // own stretches of the time axis)
    var clipTo = function (spans) {
      ctx.save(); ctx.beginPath();
      spans.forEach(function (p) { ctx.rect(xOf(p[0]), 0, xOf(p[1]) - xOf(p[0]), box.h); });
      ctx.clip();
    };
    clipTo(complement(provisional, duration));
    strokeCurve(ctx, c, box, xOf, yOf, COLORS.curve, []);
    ctx.restore();
    if (provisional.length) {
      clipTo(provisional);
      strokeCurve(ctx, c, box, xOf, yOf, COLORS.provisional, [5, 3]);
      ctx.restore();
    }
    ctx.strokeStyle = COLORS.axis; ctx.lineWidth = 1; ctx.strokeRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
    v.base = base; v.box = box; v.duration = duration; v.xOf = xOf;
    setAttr("data-drawn", JSON.stringify({frames: c.scores.length,
      provisional: (c.provisional || []).reduce(function (t, p) { return t + p[1] - p[0]; }, 0),
      events: c.events.length, open_events: c.events.filter(function (e) { return c.live && isOpen(e); }).length}));
    drawPlayhead(v);
  }

  function complement(spans, duration) {  // [start, end) spans of [0, duration] outside `spans`
    var out = [], at = 0;
    spans.forEach(function (p) { if (p[0] > at) out.push([at, p[0]]); at = Math.max(at, p[1]); });
    if (at < duration) out.push([at, duration]);
    return out;
  }

  // the curve: one min-max column per pixel when there are more frames than pixels
  function strokeCurve(ctx, c, box, xOf, yOf, color, dash) {
    ctx.strokeStyle = color; ctx.setLineDash(dash); ctx.lineWidth = 1.6; ctx.lineJoin = "round"; ctx.beginPath();
    var n = c.scores.length, columns = Math.max(1, Math.round(box.x1 - box.x0));
    if (n <= 2 * columns) {
      c.scores.forEach(function (s, i) {
        var x = xOf((i + 0.5) / c.fps);
        if (i === 0) ctx.moveTo(box.x0, yOf(s));
        ctx.lineTo(x, yOf(s));
      });
      ctx.lineTo(box.x1, yOf(c.scores[n - 1]));
    } else {
      for (var col = 0; col < columns; col++) {
        var a = Math.floor(n * col / columns), b = Math.max(a + 1, Math.floor(n * (col + 1) / columns));
        var lo = Infinity, hi = -Infinity;
        for (var i = a; i < b; i++) { lo = Math.min(lo, c.scores[i]); hi = Math.max(hi, c.scores[i]); }
        if (col === 0) ctx.moveTo(box.x0, yOf(hi));
        ctx.lineTo(box.x0 + col, yOf(hi)); ctx.lineTo(box.x0 + col, yOf(lo));
      }
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  function drawPlayhead(v) {
    var canvas = v.canvas, ratio = window.devicePixelRatio || 1;
    if (canvas.width !== v.base.width || canvas.height !== v.base.height) {
      canvas.width = v.base.width; canvas.height = v.base.height;
    }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);  // the base has transparent parts
    ctx.drawImage(v.base, 0, 0);
    ctx.scale(ratio, ratio);
    var x = v.xOf(Math.min(v.time, v.duration));
    ctx.strokeStyle = COLORS.playhead; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(x, v.box.y0); ctx.lineTo(x, v.box.y1); ctx.stroke();
    ctx.fillStyle = COLORS.playhead; ctx.beginPath();
    ctx.moveTo(x - 5, v.box.y0 - 6); ctx.lineTo(x + 5, v.box.y0 - 6); ctx.lineTo(x, v.box.y0); ctx.fill();
    v.clock.textContent = clock(v.time) + " / " + clock(v.duration) + "   frame " +
      Math.min(v.curve.num_frames - 1, Math.floor(v.time * v.curve.fps));
    v.eventRows.forEach(function (r) { r.row.classList.toggle("active", v.time >= r.e.start_s && v.time < r.e.end_s); });
    setAttr("data-playhead", v.time.toFixed(3));
  }

  function seek(v, seconds) {
    v.time = Math.max(0, Math.min(seconds, v.duration));
    if (v.video && v.source) {
      // an evidence clip covers part of the stretch: outside it, back to the whole stretch's footage
      var outside = v.time < v.offset || (v.spanEnd !== null && v.time > v.spanEnd);
      if (v.source !== v.curve.src && outside && v.curve.src) {
        useFootage(v, v.curve.src, -(v.curve.src_start_s || 0), null, "footage: " + v.curve.footage);
      }
      v.video.currentTime = Math.max(0, v.time - v.offset);
    }
    drawPlayhead(v);
  }

  // Play `src` in the view's player; its time 0 is stretch time `offset` (an evidence clip's
  // start, 0 for the video's own footage), up to `end` (null: to the end).
  function useFootage(v, src, offset, end, note) {
    if (v.source !== src) { v.video.src = src; v.source = src; }
    v.offset = offset; v.spanEnd = end;
    v.note.textContent = note;
    v.video.hidden = false;
    v.player.classList.remove("none");
  }

  function onCurveClick(v, event) {
    var rect = v.canvas.getBoundingClientRect(), x = event.clientX - rect.left;
    var fraction = (x - v.box.x0) / (v.box.x1 - v.box.x0);
    seek(v, Math.max(0, Math.min(1, fraction)) * v.duration);
  }

  function followVideo(v) {  // the playhead follows the player, smoothly while it plays
    var tick = function () {
      if (view !== v) return;
      var t = Math.max(0, v.offset + v.video.currentTime);  // a shared recording starts earlier
      if (Math.abs(t - v.time) > 1e-3) { v.time = t; drawPlayhead(v); }
      if (!v.video.paused) requestAnimationFrame(tick);
    };
    v.video.addEventListener("timeupdate", tick);
    v.video.addEventListener("seeked", tick);
    v.video.addEventListener("play", function () { requestAnimationFrame(tick); });
  }

  function onEventClick(v, e) {  // an event's evidence clip plays when there is one, else seek
    var clip = e.evidence;
    if (!(clip && clip.src && v.video)) { seek(v, e.start_s); return; }
    var end = clip.to_s === null || clip.to_s === undefined ? null : clip.to_s;
    useFootage(v, clip.src, clip.from_s, end, "footage: evidence clip of event " + e.event + " (" +
      clock(clip.from_s) + (end === null ? "" : "\u2013" + clock(end)) + " of the stretch)");
    seek(v, Math.max(e.start_s, clip.from_s));
    var playing = v.video.play();
    if (playing) playing.catch(function () {});  // a browser that wants a gesture: the user presses play
  }

  function evidenceCell(v, e) {
    var clip = e.evidence;
    if (!clip) return el("td", {class: "muted", text: isOpen(e) ? "" : "\u2014"});
    if (!clip.src) return el("td", {class: "muted", text: clip.note});
    return el("td", {}, [el("span", {class: "play", title: clip.note, text: "\u25B6 evidence"})]);
  }

  function eventTable(v) {
    var c = v.curve;
    v.eventRows = [];
    if (!c.events.length) return el("p", {class: "muted", text: "No events: no stretch reaches the threshold " + c.threshold + "."});
    var rows = c.events.map(function (e, i) {
      var cells = [el("td", {class: "num", text: String(c.live ? e.event : i + 1)})];
      if (c.live) cells.push(el("td", {class: "status " + statusText(e), text: statusText(e)}));
      cells = cells.concat([el("td", {class: "num", text: clock(e.start_s)}),
        el("td", {class: "num", text: clock(e.end_s)}), el("td", {class: "num", text: fmt(e.end_s - e.start_s, 1) + " s"}),
        el("td", {class: "num", text: fmt(e.peak, 3)}), el("td", {class: "num", text: clock(e.peak_frame / c.fps)})]);
      if (c.live) cells.push(evidenceCell(v, e));
      var row = el("tr", {class: "row", "data-event": String(c.live ? e.event : i + 1)}, cells);
      row.title = "frames " + e.start_frame + "\u2013" + (e.end_frame - 1) + "; click to " +
        (e.evidence && e.evidence.src ? "play its evidence clip" : "jump to the start");
      row.addEventListener("click", function () { onEventClick(v, e); });
      v.eventRows.push({row: row, e: e});
      return row;
    });
    var names = c.live ? ["#", "status", "start", "end", "length", "peak", "peak at", "evidence"]
      : ["#", "start", "end", "length", "peak", "peak at"];
    var head = el("tr", {}, names.map(function (h) { return el("th", {class: "num", text: h}); }));
    return el("table", {class: "events"}, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  }

  function neighbours(id) {
    var order = sortedVideos().map(function (v) { return v.video_id; }), i = order.indexOf(id);
    return [order[i - 1], order[i + 1]];
  }

  function describe(summary) {  // the line under a view's title
    var parts = [summary.class_name];
    if (summary.status) parts.push(summary.status);
    parts.push(clock(summary.duration_s) + " (" + summary.num_frames + " frames at " + summary.fps + " fps)");
    if (summary.final_frames !== undefined && summary.final_frames < summary.num_frames) {
      parts.push("scores provisional from " + clock(summary.final_frames / summary.fps));
    }
    if (summary.peak !== null) parts.push("peak " + fmt(summary.peak, 3) + " at " + clock(summary.peak_s));
    parts.push(eventCount(summary) + " event" + (summary.num_events === 1 ? "" : "s"));
    if (summary.started) parts.push("started " + wallClock(summary.started));
    if (summary.gap_before_s !== null && summary.gap_before_s !== undefined) {
      parts.push("after a gap (" + gapName(summary.gap_kind) + ") of " + fmt(summary.gap_before_s, 1) + " s");
    }
    if (summary.auc !== null && summary.auc !== undefined) parts.push("own AUC " + fmt(summary.auc, 3));
    return parts.filter(Boolean).join(" \u00B7 ");
  }

  function renderVideo(id, params) {
    var summary = data.videos.find(function (v) { return v.video_id === id; });
    var main = document.getElementById("main");
    main.textContent = "";
    var noun = kind() === "stream" ? "stretch" : "video";
    if (!summary) { main.appendChild(el("p", {class: "error", text: "No " + noun + " " + id + " in this folder."})); return; }
    document.title = "CLAWS review: " + (data.run.stream ? data.run.stream + " " : "") + id;
    var near = neighbours(id);
    var link = function (to, text) { return to ? el("a", {href: "#video=" + encodeURIComponent(to), text: text}) : el("span", {class: "muted", text: text}); };
    main.appendChild(el("nav", {class: "crumbs"}, [el("a", {href: "#", text: "\u2190 all " + noun + (noun === "stretch" ? "es" : "s")}), link(near[0], "\u2039 previous"), link(near[1], "next \u203A")]));
    main.appendChild(el("h1", {text: id}));
    main.appendChild(el("p", {class: "muted", text: describe(summary)}));
    var loading = el("p", {class: "muted", text: "loading the curve\u2026"});
    main.appendChild(loading);
    loadCurve(id, function (curve) {
      if (!document.getElementById("main").contains(loading)) return;  // another view opened meanwhile
      loading.remove();
      curve.threshold = data.run.threshold;
      curve.live = kind() !== "scores";
      showVideo(main, curve, params);
    }, function () { loading.textContent = "curves/" + id + ".js is missing: rerun `claws review`."; });
  }

  function showVideo(main, curve, params) {
    var v = {id: curve.video_id, curve: curve, time: 0, offset: 0, spanEnd: null, source: null,
             clock: el("div", {class: "clock"})};
    var evidence = curve.events.some(function (e) { return e.evidence && e.evidence.src; });
    if (curve.src || evidence) {
      v.video = el("video", {controls: "", preload: "auto", muted: "", playsinline: ""});
      v.video.muted = true;
      v.note = el("p", {class: "muted small"});
      v.player = el("div", {class: "player"}, [v.video, v.note]);
      if (curve.src) useFootage(v, curve.src, -(curve.src_start_s || 0), null, "footage: " + curve.footage);
      else {
        v.video.hidden = true;
        v.player.classList.add("none");
        v.note.textContent = "No footage of the whole " + (curve.live ? "stretch" : "video") + ": " +
          curve.footage + ". Click an event with an evidence clip to play it.";
      }
    } else {
      v.player = el("div", {class: "player none"}, [el("p", {text: "No footage: " + curve.footage})]);
    }
    v.canvas = el("canvas", {class: "curve"});
    var legend = el("div", {class: "legend"}, [
      el("span", {class: "key curve", text: "anomaly score"}),
      curve.live ? el("span", {class: "key provisional", text: "provisional (may change)"}) : null,
      el("span", {class: "key event", text: "events"}),
      curve.live ? el("span", {class: "key open-event", text: "open events"}) : null,
      curve.truth ? el("span", {class: "key truth", text: "ground truth"}) : null,
      el("span", {class: "key threshold", text: "threshold"}), el("span", {class: "hint", text: "click the curve to seek"}),
    ]);
    var side = el("div", {class: "side"}, [v.canvas, legend, v.clock, el("h2", {text: "Events"}), eventTable(v)]);
    main.appendChild(el("div", {class: "panes"}, [v.player, side]));
    view = v;
    drawCurve(v);
    document.documentElement.setAttribute("data-video-ms", performance.now().toFixed(1));
    v.canvas.addEventListener("click", function (e) { onCurveClick(v, e); });
    if (v.video) followVideo(v);
    window.onresize = function () { if (view === v) drawCurve(v); };
    if (restoring()) restorePlace(v);
    else runCommands(v, params);
  }

  function runCommands(v, params) {  // test and screenshot hooks (see the top of this file)
    var act = function () {
      if (params.has("seek")) seek(v, Number(params.get("seek")));
      if (params.has("event")) clickEvent(v, params.get("event"));
      if (!params.has("click")) return;
      var before = v.video ? v.video.currentTime : v.time;
      var rect = v.canvas.getBoundingClientRect(), f = Number(params.get("click"));
      var clientX = rect.left + v.box.x0 + f * (v.box.x1 - v.box.x0), clientY = rect.top + (v.box.y0 + v.box.y1) / 2;
      v.canvas.dispatchEvent(new MouseEvent("click", {clientX: clientX, clientY: clientY, bubbles: true}));
      var report = function () {
        document.documentElement.setAttribute("data-seek", JSON.stringify({
          before: before, after: v.video ? v.video.currentTime : v.time, playhead: v.time,
          expected: f * v.duration, has_video: !!v.video,
          ready_state: v.video ? v.video.readyState : null, video_duration: v.video ? v.video.duration : null,
        }));
      };
      if (v.video) v.video.addEventListener("seeked", report, {once: true});
      report();
    };
    if (!v.source || v.video.readyState >= 1) act();
    else {
      v.video.addEventListener("loadedmetadata", act, {once: true});
      v.video.addEventListener("error", act, {once: true});
    }
  }

  function clickEvent(v, number) {  // hook "event=N": a real click on event N's row, then report
    var found = v.eventRows.find(function (r) { return String(r.e.event) === number; });
    if (!found) return;
    found.row.dispatchEvent(new MouseEvent("click", {bubbles: true}));
    if (!v.video) return;
    var from = null;
    var report = function () {
      if (from === null && v.video.readyState >= 1) from = v.video.currentTime;
      setAttr("data-evidence", JSON.stringify({
        src: v.video.currentSrc, ready_state: v.video.readyState, current_time: v.video.currentTime,
        offset: v.offset, playhead: v.time, error: v.video.error ? v.video.error.code : null,
        played: from !== null && v.video.currentTime > from + 0.04,
      }));
    };
    ["loadeddata", "seeked", "playing", "timeupdate", "pause", "ended", "error"].forEach(function (name) {
      v.video.addEventListener(name, report);
    });
    report();
  }

  /* ---- a page that reloads itself (run.refresh_s: `claws review --follow`) ---- */

  var PLACE_KEY = "claws-review:" + location.pathname;

  function restoring() { return !!place && place.hash === location.hash; }

  function restorePlace(v) {  // after a reload: the scroll position and the playhead as they were
    if (v && place.time !== null && place.time !== undefined) seek(v, place.time);
    window.scrollTo(0, place.scroll || 0);
    setAttr("data-restored", JSON.stringify(place));
    place = null;  // once: a later visit to this view starts afresh
  }

  function keepReloading() {
    var period = data.run.refresh_s, saved = null;
    if (!period) return;
    try { saved = JSON.parse(sessionStorage.getItem(PLACE_KEY) || "null"); } catch (err) { saved = null; }
    if (saved && saved.hash === location.hash) {
      place = saved;
      sortKey = saved.sortKey; sortDescending = saved.sortDescending;
    }
    setAttr("data-reloads", String(saved ? saved.reloads : 0));
    var most = hashParams().get("reloads");  // test hook: stop after that many reloads
    if (most !== null && saved && saved.reloads >= Number(most)) return;
    var reload = function () {
      if (view && view.video && !view.video.paused) { setTimeout(reload, period * 1000); return; }  // not while it plays
      try {
        sessionStorage.setItem(PLACE_KEY, JSON.stringify({
          hash: location.hash, scroll: window.scrollY, time: view ? view.time : null,
          sortKey: sortKey, sortDescending: sortDescending, reloads: (saved ? saved.reloads : 0) + 1}));
      } catch (err) { /* no session storage: the page reloads at the top */ }
      location.reload();
    };
    setTimeout(reload, period * 1000);
  }

  function route() {
    if (!data) {
      document.getElementById("main").textContent = "summaries.js is missing: rerun `claws review`.";
      return;
    }
    var params = hashParams();
    if (params.has("video")) renderVideo(params.get("video"), params);
    else {
      renderTriage();
      if (params.has("sort") && !restoring()) sortByClick(params.get("sort"));
    }
    window.scrollTo(0, 0);
    if (!params.has("video") && restoring()) restorePlace(null);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (data) { keepReloading(); renderHeader(); }
    route();
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", function (e) {
      if (!view || !view.video || e.target.tagName === "INPUT") return;
      if (e.key === " ") { e.preventDefault(); if (view.video.paused) view.video.play(); else view.video.pause(); }
    });
  });

  return {registerSummaries: registerSummaries, registerCurve: registerCurve};
})();
