/* The data page's charts (issue 18): read the records the page's filters
 * select (GET /api/v1/jobs/ID/data, following "next", at most MAX records),
 * and draw one uPlot chart per numeric field: a line per device, or the mean
 * across devices per time bucket. uPlot is vendored (static/vendor/uPlot.*). */
(function () {
  "use strict";
  var MAX = 20000;
  var BUCKETS = 500;

  function load(url, items, done, fail) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error("the server answered " + r.status); }
        return r.json();
      })
      .then(function (page) {
        items.push.apply(items, page.items);
        if (page.next && items.length < MAX) {
          var next = new URL(url, window.location.href);
          next.searchParams.set("cursor", page.next);
          load(next.toString(), items, done, fail);
        } else {
          done(items, Boolean(page.next));
        }
      })
      .catch(fail);
  }

  function numericFields(items, only) {
    var seen = {};
    items.forEach(function (item) {
      Object.keys(item.record || {}).forEach(function (key) {
        var v = item.record[key];
        if (typeof v === "number" && isFinite(v) && (!only || key === only)) { seen[key] = true; }
      });
    });
    return Object.keys(seen).sort();
  }

  function perDevice(items, key, names) {
    var devices = [], times = {}, byDevice = {};
    items.forEach(function (item) {
      var v = item.record[key];
      if (typeof v !== "number") { return; }
      var t = Date.parse(item.time) / 1000;
      if (!(item.device in byDevice)) { byDevice[item.device] = {}; devices.push(item.device); }
      byDevice[item.device][t] = v;
      times[t] = true;
    });
    var xs = Object.keys(times).map(Number).sort(function (a, b) { return a - b; });
    var data = [xs];
    devices.forEach(function (d) {
      data.push(xs.map(function (t) { return t in byDevice[d] ? byDevice[d][t] : null; }));
    });
    return { labels: devices.map(function (d) { return names[d] || d; }), data: data };
  }

  function aggregate(items, key) {
    var points = [];
    items.forEach(function (item) {
      var v = item.record[key];
      if (typeof v === "number") { points.push([Date.parse(item.time) / 1000, v]); }
    });
    if (!points.length) { return { labels: ["mean"], data: [[], []] }; }
    points.sort(function (a, b) { return a[0] - b[0]; });
    var first = points[0][0], span = points[points.length - 1][0] - first;
    var width = Math.max(1, span / BUCKETS), sums = {}, counts = {};
    points.forEach(function (p) {
      var b = first + Math.floor((p[0] - first) / width) * width;
      sums[b] = (sums[b] || 0) + p[1];
      counts[b] = (counts[b] || 0) + 1;
    });
    var xs = Object.keys(sums).map(Number).sort(function (a, b) { return a - b; });
    return { labels: ["mean of all devices"], data: [xs, xs.map(function (b) { return sums[b] / counts[b]; })] };
  }

  function draw(holder, items, truncated) {
    var status = document.querySelector("[data-data-status]");
    var fields = numericFields(items, holder.getAttribute("data-field"));
    var mode = holder.getAttribute("data-mode");
    var names = JSON.parse(holder.getAttribute("data-names") || "{}");
    holder.innerHTML = "";
    var width = Math.max(320, holder.clientWidth || 800);
    fields.forEach(function (key) {
      var shaped = mode === "aggregate" ? aggregate(items, key) : perDevice(items, key, names);
      var box = document.createElement("figure");
      box.className = "data-chart";
      box.setAttribute("data-chart", key);
      holder.appendChild(box);
      var series = [{}].concat(shaped.labels.map(function (label, i) {
        return { label: label, stroke: "hsl(" + ((i * 67) % 360) + ",65%,45%)", spanGaps: true };
      }));
      new window.uPlot({ title: key, width: width, height: 240, scales: { x: { time: true } },
        series: series }, shaped.data, box);
    });
    holder.setAttribute("data-plotted", String(items.length));
    status.textContent = items.length + " records, " + fields.length + " numeric field(s)" +
      (truncated ? " (first " + MAX + " shown; narrow the time range)" : "") +
      (fields.length ? "" : ": nothing numeric to plot");
  }

  function start() {
    var holder = document.getElementById("data-chart");
    if (!holder) { return; }
    load(holder.getAttribute("data-records"), [], function (items, truncated) {
      draw(holder, items, truncated);
    }, function (err) {
      document.querySelector("[data-data-status]").textContent = "Could not load the data: " + err.message;
      holder.setAttribute("data-plotted", "error");
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", start); }
  else { start(); }
})();
