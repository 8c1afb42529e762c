/* Device telemetry charts (issue 18): every <div data-telemetry="/api/v1/devices/ID/metrics">
 * gets uPlot charts of the last 24 hours, read from the API with the session
 * cookie, refreshed every minute. uPlot is vendored (static/vendor/uPlot.*). */
(function () {
  "use strict";
  var SPAN = 24 * 3600;

  function rates(times, counters) {
    var out = [null];
    for (var i = 1; i < times.length; i++) {
      var dt = times[i] - times[i - 1];
      var d = counters[i] - counters[i - 1];
      out.push(dt > 0 && d >= 0 ? d / dt : null);
    }
    return out;
  }

  function chart(holder, title, series, data, width, yLabel) {
    var box = document.createElement("figure");
    box.className = "telemetry-chart";
    box.setAttribute("data-chart", title);
    holder.appendChild(box);
    var opts = {
      title: title,
      width: width,
      height: 200,
      scales: { x: { time: true } },
      series: [{}].concat(series),
      axes: [{}, { label: yLabel }],
    };
    return new window.uPlot(opts, data, box);
  }

  function step(items) {
    return items.length > 600 ? Math.ceil(SPAN / 600) : null;
  }

  function draw(holder, items) {
    holder.innerHTML = "";
    var status = holder.parentNode.querySelector("[data-telemetry-status]");
    if (!items.length) {
      if (status) status.textContent = "No telemetry yet: the agent reports every minute.";
      return;
    }
    var last = items[items.length - 1];
    if (status) {
      status.textContent = "Last sample " + new Date(last.time).toLocaleString() +
        " · CPU " + last.cpu.toFixed(1) + " % · memory " + last.memory.toFixed(1) +
        " % · disk " + last.disk.toFixed(1) + " %" +
        (last.temperature === null ? "" : " · " + last.temperature.toFixed(1) + " °C");
    }
    var t = items.map(function (p) { return Date.parse(p.time) / 1000; });
    var width = Math.max(320, Math.min(holder.clientWidth || 800, 1100));
    chart(holder, "CPU, memory, disk (%)", [
      { label: "CPU %", stroke: "#d9480f", width: 1.5 },
      { label: "memory %", stroke: "#1c7ed6", width: 1.5 },
      { label: "disk %", stroke: "#2b8a3e", width: 1.5 },
    ], [t, items.map(function (p) { return p.cpu; }),
        items.map(function (p) { return p.memory; }),
        items.map(function (p) { return p.disk; })], width, "%");
    if (items.some(function (p) { return p.temperature !== null; })) {
      chart(holder, "Temperature (°C)", [{ label: "°C", stroke: "#c2255c", width: 1.5 }],
        [t, items.map(function (p) { return p.temperature; })], width, "°C");
    }
    chart(holder, "Network (bytes/s)", [
      { label: "received", stroke: "#5f3dc4", width: 1.5 },
      { label: "sent", stroke: "#e8590c", width: 1.5 },
    ], [t, rates(t, items.map(function (p) { return p.net_rx; })),
        rates(t, items.map(function (p) { return p.net_tx; }))], width, "B/s");
  }

  function load(holder) {
    var base = holder.getAttribute("data-telemetry");
    var all = [];
    function page(cursor, stepSeconds) {
      var params = new URLSearchParams({ since: "24h", limit: "1000" });
      if (stepSeconds) params.set("step", String(stepSeconds));
      if (cursor) params.set("cursor", cursor);
      return fetch(base + "?" + params.toString(), {
        credentials: "same-origin", headers: { Accept: "application/json" },
      }).then(function (r) { return r.ok ? r.json() : { items: [], next: null }; })
        .then(function (body) {
          all = all.concat(body.items);
          if (body.next && all.length < 5000) return page(body.next, stepSeconds);
          return all;
        });
    }
    page(null, null).then(function (items) {
      var s = step(items);
      if (!s) return items;
      all = [];
      return page(null, s);
    }).then(function (items) { draw(holder, items); });
  }

  function start() {
    var holders = document.querySelectorAll("[data-telemetry]");
    for (var i = 0; i < holders.length; i++) {
      load(holders[i]);
      setInterval(load.bind(null, holders[i]), 60000);
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
