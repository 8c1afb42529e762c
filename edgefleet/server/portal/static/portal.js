/* edgefleet portal: live updates, relative times, log viewers, copy buttons.
 *
 * Live updates: one EventSource on /portal/live per page. Each message is a
 * JSON list of stale topics ("devices", "job-<id>", ...); each topic becomes a
 * DOM event "ef-<topic>" on <body> (at most one per topic every 400 ms, the
 * last one always delivered), and htmx regions listening for it
 * (hx-trigger="ef-devices from:body") fetch their fragment again.
 */
(function () {
  "use strict";

  var THROTTLE_MS = 400;

  function ago(iso) {
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 60) return Math.floor(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function tick() {
    var times = document.querySelectorAll("time[data-ago]");
    for (var i = 0; i < times.length; i++) {
      var iso = times[i].getAttribute("datetime");
      if (iso) times[i].textContent = ago(iso);
    }
  }

  function live() {
    var url = document.body.getAttribute("data-live");
    if (!url || !window.EventSource) return;
    var dot = document.querySelector("[data-live-dot]");
    var timers = {};
    var pending = {};
    var source = new EventSource(url);

    function emit(topic) {
      document.body.dispatchEvent(new CustomEvent("ef-" + topic));
    }
    function fire(topic) {
      if (timers[topic]) {
        pending[topic] = true;
        return;
      }
      emit(topic);
      timers[topic] = setTimeout(function () {
        timers[topic] = null;
        if (pending[topic]) {
          pending[topic] = false;
          fire(topic);
        }
      }, THROTTLE_MS);
    }

    source.onopen = function () {
      if (dot) dot.classList.add("on");
      document.body.setAttribute("data-live-state", "open");
    };
    source.onerror = function () {
      if (dot) dot.classList.remove("on");
      document.body.setAttribute("data-live-state", "reconnecting");
    };
    source.onmessage = function (message) {
      var topics = [];
      try {
        topics = JSON.parse(message.data);
      } catch (e) {
        return;
      }
      for (var i = 0; i < topics.length; i++) fire(topics[i]);
    };
    source.addEventListener("signed-out", function () {
      source.close();
      window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
    });
    window.addEventListener("pagehide", function () {
      source.close();
    });
  }

  /* A log viewer: <div data-logs="/api/v1/.../logs"> with [data-logs-load],
   * [data-logs-follow], optional <select data-logs-param="device"> and a
   * <pre class="log-output">. Reads the API's streamed text as it arrives. */
  function logs(box) {
    var base = box.getAttribute("data-logs");
    var out = box.querySelector(".log-output");
    var load = box.querySelector("[data-logs-load]");
    var follow = box.querySelector("[data-logs-follow]");
    var controller = null;
    var MAX_CHARS = 400000;

    function query(following) {
      var params = new URLSearchParams();
      params.set("tail", "200");
      if (following) params.set("follow", "true");
      var selects = box.querySelectorAll("[data-logs-param]");
      for (var i = 0; i < selects.length; i++) {
        if (selects[i].value) params.set(selects[i].getAttribute("data-logs-param"), selects[i].value);
      }
      return params.toString();
    }
    function stop() {
      if (controller) {
        controller.abort();
        controller = null;
      }
      follow.setAttribute("aria-pressed", "false");
      follow.textContent = "Follow";
      box.removeAttribute("data-following");
    }
    function append(text) {
      var atEnd = out.scrollTop + out.clientHeight >= out.scrollHeight - 8;
      var all = out.textContent + text;
      out.textContent = all.length > MAX_CHARS ? all.slice(all.length - MAX_CHARS) : all;
      if (atEnd) out.scrollTop = out.scrollHeight;
    }
    function run(following) {
      stop();
      out.textContent = "";
      var mine = new AbortController();
      controller = mine;
      if (following) {
        follow.setAttribute("aria-pressed", "true");
        follow.textContent = "Stop following";
        box.setAttribute("data-following", "true");
      }
      fetch(base + "?" + query(following), {
        signal: mine.signal,
        credentials: "same-origin",
        headers: { Accept: "text/plain" },
      })
        .then(function (response) {
          if (!response.ok) {
            return response.json().then(
              function (body) { append("(" + (body.detail || response.statusText) + ")\n"); },
              function () { append("(" + response.status + " " + response.statusText + ")\n"); }
            );
          }
          var reader = response.body.getReader();
          var decoder = new TextDecoder();
          function pump() {
            return reader.read().then(function (chunk) {
              if (chunk.done) return;
              append(decoder.decode(chunk.value, { stream: true }));
              return pump();
            });
          }
          return pump();
        })
        .catch(function (error) {
          if (error && error.name !== "AbortError") append("\n(" + error.message + ")\n");
        })
        .then(function () {
          if (controller === mine) stop();
        });
    }
    load.addEventListener("click", function () { run(false); });
    follow.addEventListener("click", function () {
      if (follow.getAttribute("aria-pressed") === "true") stop();
      else run(true);
    });
    window.addEventListener("pagehide", stop);
  }

  function copyButtons() {
    var buttons = document.querySelectorAll("[data-copy]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        var button = event.currentTarget;
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source) return;
        var text = source.textContent;
        var selectIt = function () {
          var range = document.createRange();
          range.selectNodeContents(source);
          var selection = window.getSelection();
          selection.removeAllRanges();
          selection.addRange(range);
          button.textContent = "Selected: press Ctrl+C";
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(function () { button.textContent = "Copied"; }, selectIt);
        } else {
          selectIt();
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    tick();
    setInterval(tick, 1000);
    live();
    var boxes = document.querySelectorAll("[data-logs]");
    for (var i = 0; i < boxes.length; i++) logs(boxes[i]);
    copyButtons();
  });
})();
