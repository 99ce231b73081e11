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
 * video's view <html data-video-ms> once its curve is drawn (bench/review.py). */
"use strict";

var CLAWS = (function () {
  var COLORS = {curve: "#1f4e9c", event: "#f28e2b", truth: "#d62728", threshold: "#555555",
                grid: "#e6e8ec", axis: "#444444", playhead: "#111111"};
  var MARGIN = {left: 44, right: 14, top: 14, bottom: 62};  // bottom: event/truth strips + axis
  var data = null;
  var curves = {};
  var waiting = {};
  var sortKey = "peak", sortDescending = true;
  var view = null;  // the open video view: {id, canvas, video, curve, time, ...}

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

  /* ---- data, registered by summaries.js and curves/<id>.js ---- */

  function registerSummaries(d) { data = d; }

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

  function renderHeader() {
    var run = data.run, top = document.getElementById("top");
    top.textContent = "";
    var facts = [
      ["videos", String(data.videos.length)],
      ["checkpoint", run.checkpoint + (run.checkpoint_step ? " (step " + run.checkpoint_step + ")" : "")],
      ["threshold", String(run.threshold)],
      ["events", "\u2265 " + run.min_duration_s + " s, gaps \u2264 " + run.merge_gap_s + " s merged"],
      ["C3D", run.precision],
    ];
    if (run.has_truth) facts.push(["ground truth", "shown in red"]);
    top.appendChild(el("div", {class: "title"}, [
      el("a", {href: "#", class: "brand", text: "CLAWS review"}),
      el("span", {class: "folder", text: run.folder}),
    ]));
    top.appendChild(el("dl", {class: "facts"}, facts.map(function (f) {
      return el("div", {}, [el("dt", {text: f[0]}), el("dd", {text: f[1]})]);
    })));
    if (run.random_features) {
      top.appendChild(el("div", {class: "banner", text: "RANDOM C3D WEIGHTS: these features are not " +
        "real C3D features; the curves check the plumbing, they say nothing about the footage."}));
    }
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

  function columns() {
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
    document.title = "CLAWS review: " + data.videos.length + " videos";
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
    }).concat([el("th", {text: "curve (max per stretch; dashed: threshold)"})]));
    var body = el("tbody");
    var sparks = [];
    sortedVideos().forEach(function (v) {
      var canvas = el("canvas", {class: "spark", width: "160", height: "28"});
      sparks.push([canvas, v.sparkline]);
      var row = el("tr", {class: v.num_events > 0 ? "row flagged" : "row", "data-video": v.video_id},
        shown.map(function (c) {
          return el("td", {class: c.numeric ? "num" : "", text: c.show ? c.show(v) : String(v[c.key] === null ? "" : v[c.key])});
        }).concat([el("td", {}, [canvas])]));
      row.addEventListener("click", function () { location.hash = "video=" + encodeURIComponent(v.video_id); });
      body.appendChild(row);
    });
    main.appendChild(el("table", {class: "triage", id: "triage"}, [el("thead", {}, [head]), body]));
    sparks.forEach(function (s) { drawSparkline(s[0], s[1], data.run.threshold); });
    document.documentElement.setAttribute("data-sort", sortKey + (sortDescending ? " desc" : " asc"));
    document.documentElement.setAttribute("data-rendered-ms", performance.now().toFixed(1));
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
    var duration = c.num_frames / c.fps, top = c.scores.reduce(function (m, s) { return s > m ? s : m; }, 1);
    var xOf = function (t) { return box.x0 + (box.x1 - box.x0) * t / duration; };
    var yOf = function (s) { return box.y1 - (box.y1 - box.y0) * s / top; };
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = COLORS.axis;
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (var s = 0; s <= top + 1e-9; s += 0.25) {
      ctx.strokeStyle = COLORS.grid; ctx.beginPath(); ctx.moveTo(box.x0, yOf(s)); ctx.lineTo(box.x1, yOf(s)); ctx.stroke();
      ctx.fillText(s.toFixed(2), box.x0 - 6, yOf(s));
    }
    c.events.forEach(function (e) {  // events shaded behind the curve, as in the PNG
      ctx.fillStyle = "rgba(242, 142, 43, 0.22)";
      ctx.fillRect(xOf(e.start_s), box.y0, xOf(e.end_s) - xOf(e.start_s), box.y1 - box.y0);
    });
    var strip = function (row, color, label, spans) {  // a band under the axes
      var y = box.y1 + 6 + row * 13;
      ctx.fillStyle = "#f3f4f6"; ctx.fillRect(box.x0, y, box.x1 - box.x0, 9);
      ctx.fillStyle = color;
      spans.forEach(function (p) { ctx.fillRect(xOf(p[0]), y, Math.max(1, xOf(p[1]) - xOf(p[0])), 9); });
      ctx.fillStyle = COLORS.axis; ctx.textAlign = "right"; ctx.fillText(label, box.x0 - 6, y + 5);
    };
    strip(0, COLORS.event, "events", c.events.map(function (e) { return [e.start_s, e.end_s]; }));
    if (c.truth) strip(1, COLORS.truth, "truth", c.truth.map(function (p) { return [p[0] / c.fps, p[1] / c.fps]; }));
    var axisY = box.y1 + 6 + (c.truth ? 2 : 1) * 13 + 4;
    ctx.textAlign = "center"; ctx.textBaseline = "top"; ctx.fillStyle = COLORS.axis;
    var step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find(function (d) { return duration / d <= 10; }) || 1200;
    for (var t = 0; t <= duration + 1e-9; t += step) ctx.fillText(clock(t), xOf(t), axisY);
    ctx.strokeStyle = COLORS.threshold; ctx.setLineDash([6, 4]); ctx.lineWidth = 1.2;
    ctx.beginPath(); ctx.moveTo(box.x0, yOf(c.threshold)); ctx.lineTo(box.x1, yOf(c.threshold)); ctx.stroke();
    ctx.setLineDash([]); ctx.textAlign = "right"; ctx.textBaseline = "bottom"; ctx.fillStyle = COLORS.threshold;
    ctx.fillText("threshold " + c.threshold, box.x1, yOf(c.threshold) - 2);
    // the curve: one min-max column per pixel when there are more frames than pixels
    ctx.strokeStyle = COLORS.curve; ctx.lineWidth = 1.6; ctx.lineJoin = "round"; ctx.beginPath();
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
    ctx.strokeStyle = COLORS.axis; ctx.lineWidth = 1; ctx.strokeRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
    v.base = base; v.box = box; v.duration = duration; v.xOf = xOf;
    drawPlayhead(v);
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
  }

  function seek(v, seconds) {
    v.time = Math.max(0, Math.min(seconds, v.duration));
    if (v.video) v.video.currentTime = v.time;
    drawPlayhead(v);
  }

  function onCurveClick(v, event) {
    var rect = v.canvas.getBoundingClientRect(), x = event.clientX - rect.left;
    var fraction = (x - v.box.x0) / (v.box.x1 - v.box.x0);
    seek(v, Math.max(0, Math.min(1, fraction)) * v.duration);
  }

  function followVideo(v) {  // the playhead follows the player, smoothly while it plays
    var tick = function () {
      if (view !== v) return;
      if (Math.abs(v.video.currentTime - v.time) > 1e-3) { v.time = v.video.currentTime; drawPlayhead(v); }
      if (!v.video.paused) requestAnimationFrame(tick);
    };
    v.video.addEventListener("timeupdate", tick);
    v.video.addEventListener("seeked", tick);
    v.video.addEventListener("play", function () { requestAnimationFrame(tick); });
  }

  function eventTable(v) {
    var c = v.curve;
    v.eventRows = [];
    if (!c.events.length) return el("p", {class: "muted", text: "No events: no stretch reaches the threshold " + c.threshold + "."});
    var rows = c.events.map(function (e, i) {
      var row = el("tr", {class: "row"}, [
        el("td", {class: "num", text: String(i + 1)}), el("td", {class: "num", text: clock(e.start_s)}),
        el("td", {class: "num", text: clock(e.end_s)}), el("td", {class: "num", text: fmt(e.end_s - e.start_s, 1) + " s"}),
        el("td", {class: "num", text: fmt(e.peak, 3)}), el("td", {class: "num", text: clock(e.peak_frame / c.fps)}),
      ]);
      row.title = "frames " + e.start_frame + "\u2013" + (e.end_frame - 1) + "; click to jump to the start";
      row.addEventListener("click", function () { seek(v, e.start_s); });
      v.eventRows.push({row: row, e: e});
      return row;
    });
    var head = el("tr", {}, ["#", "start", "end", "length", "peak", "peak at"].map(function (h) { return el("th", {class: "num", text: h}); }));
    return el("table", {class: "events"}, [el("thead", {}, [head]), el("tbody", {}, rows)]);
  }

  function neighbours(id) {
    var order = sortedVideos().map(function (v) { return v.video_id; }), i = order.indexOf(id);
    return [order[i - 1], order[i + 1]];
  }

  function renderVideo(id, params) {
    var summary = data.videos.find(function (v) { return v.video_id === id; });
    var main = document.getElementById("main");
    main.textContent = "";
    if (!summary) { main.appendChild(el("p", {class: "error", text: "No video " + id + " in this folder."})); return; }
    document.title = "CLAWS review: " + id;
    var near = neighbours(id);
    var link = function (to, text) { return to ? el("a", {href: "#video=" + encodeURIComponent(to), text: text}) : el("span", {class: "muted", text: text}); };
    main.appendChild(el("nav", {class: "crumbs"}, [el("a", {href: "#", text: "\u2190 all videos"}), link(near[0], "\u2039 previous"), link(near[1], "next \u203A")]));
    main.appendChild(el("h1", {text: id}));
    main.appendChild(el("p", {class: "muted", text: [summary.class_name, clock(summary.duration_s) + " (" + summary.num_frames + " frames at " + summary.fps + " fps)",
      "peak " + fmt(summary.peak, 3) + " at " + clock(summary.peak_s), summary.num_events + " event" + (summary.num_events === 1 ? "" : "s"),
      summary.auc === null || summary.auc === undefined ? "" : "own AUC " + fmt(summary.auc, 3)].filter(Boolean).join(" \u00B7 ")}));
    var loading = el("p", {class: "muted", text: "loading the curve\u2026"});
    main.appendChild(loading);
    loadCurve(id, function (curve) {
      if (!document.getElementById("main").contains(loading)) return;  // another view opened meanwhile
      loading.remove();
      curve.threshold = data.run.threshold;
      showVideo(main, curve, params);
    }, function () { loading.textContent = "curves/" + id + ".js is missing: rerun `claws review`."; });
  }

  function showVideo(main, curve, params) {
    var v = {id: curve.video_id, curve: curve, time: 0, clock: el("div", {class: "clock"})};
    var player;
    if (curve.src) {
      v.video = el("video", {src: curve.src, controls: "", preload: "auto", muted: "", playsinline: ""});
      v.video.muted = true;
      player = el("div", {class: "player"}, [v.video, el("p", {class: "muted small", text: "footage: " + curve.footage})]);
    } else {
      player = el("div", {class: "player none"}, [el("p", {text: "No footage: " + curve.footage})]);
    }
    v.canvas = el("canvas", {class: "curve"});
    var legend = el("div", {class: "legend"}, [
      el("span", {class: "key curve", text: "anomaly score"}), el("span", {class: "key event", text: "events"}),
      curve.truth ? el("span", {class: "key truth", text: "ground truth"}) : null,
      el("span", {class: "key threshold", text: "threshold"}), el("span", {class: "hint", text: "click the curve to seek"}),
    ]);
    var side = el("div", {class: "side"}, [v.canvas, legend, v.clock, el("h2", {text: "Events"}), eventTable(v)]);
    main.appendChild(el("div", {class: "panes"}, [player, side]));
    view = v;
    drawCurve(v);
    document.documentElement.setAttribute("data-video-ms", performance.now().toFixed(1));
    v.canvas.addEventListener("click", function (e) { onCurveClick(v, e); });
    if (v.video) followVideo(v);
    window.onresize = function () { if (view === v) drawCurve(v); };
    runCommands(v, params);
  }

  function runCommands(v, params) {  // test and screenshot hooks (see the top of this file)
    var act = function () {
      if (params.has("seek")) seek(v, Number(params.get("seek")));
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
    if (!v.video || v.video.readyState >= 1) act();
    else {
      v.video.addEventListener("loadedmetadata", act, {once: true});
      v.video.addEventListener("error", act, {once: true});
    }
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
      if (params.has("sort")) sortByClick(params.get("sort"));
    }
    window.scrollTo(0, 0);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (data) renderHeader();
    route();
    window.addEventListener("hashchange", route);
    document.addEventListener("keydown", function (e) {
      if (!view || !view.video || e.target.tagName === "INPUT") return;
      if (e.key === " ") { e.preventDefault(); if (view.video.paused) view.video.play(); else view.video.pause(); }
    });
  });

  return {registerSummaries: registerSummaries, registerCurve: registerCurve};
})();
