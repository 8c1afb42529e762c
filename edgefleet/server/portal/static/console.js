/* The exec console: xterm.js over the exec WebSocket of the API.
 * Each binary message is one channel byte + data: 0 stdin (to the device),
 * 1 stdout, 2 stderr, 3 control JSON ({"resize": [cols, rows]} from us;
 * {"exit_code": n} or {"error": "..."} from the device). */
(function () {
  "use strict";
  var STDIN = 0, STDOUT = 1, STDERR = 2, CONTROL = 3;
  var encoder = new TextEncoder();
  var decoder = new TextDecoder();

  function setup(box) {
    var button = box.querySelector("[data-console-open]");
    var status = box.querySelector("[data-console-status]");
    var holder = box.querySelector("[data-console-terminal]");
    var term = null, fit = null, socket = null;

    function send(channel, bytes) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return;
      var frame = new Uint8Array(bytes.length + 1);
      frame[0] = channel;
      frame.set(bytes, 1);
      socket.send(frame);
    }
    function control(message) {
      send(CONTROL, encoder.encode(JSON.stringify(message)));
    }
    function terminal() {
      if (term) return;
      term = new window.Terminal({
        cursorBlink: true,
        fontSize: 14,
        fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
        theme: { background: "#111827", foreground: "#e5e7eb" },
      });
      fit = new window.FitAddon.FitAddon();
      term.loadAddon(fit);
      term.open(holder);
      term.onData(function (data) { send(STDIN, encoder.encode(data)); });
      term.onResize(function (size) { control({ resize: [size.cols, size.rows] }); });
      window.addEventListener("resize", function () { if (!holder.hidden) fit.fit(); });
    }
    function open() {
      holder.hidden = false;
      terminal();
      fit.fit();
      status.textContent = "connecting…";
      var scheme = location.protocol === "https:" ? "wss:" : "ws:";
      var url = scheme + "//" + location.host + box.getAttribute("data-console") +
        "?tty=true&cols=" + term.cols + "&rows=" + term.rows;
      socket = new WebSocket(url);
      socket.binaryType = "arraybuffer";
      socket.onopen = function () {
        status.textContent = "connected";
        button.textContent = "Close console";
        box.setAttribute("data-console-state", "open");
        term.focus();
      };
      socket.onmessage = function (event) {
        if (typeof event.data === "string") { term.write(event.data); return; }
        var data = new Uint8Array(event.data);
        var channel = data[0], body = data.subarray(1);
        if (channel === STDOUT || channel === STDERR) {
          term.write(body);
        } else if (channel === CONTROL) {
          var message = {};
          try { message = JSON.parse(decoder.decode(body)); } catch (e) { return; }
          if (message.error) status.textContent = message.error;
          else if (message.exit_code !== undefined) status.textContent = "exited with code " + message.exit_code;
        }
      };
      socket.onclose = function () {
        socket = null;
        button.textContent = "Open console";
        box.setAttribute("data-console-state", "closed");
        if (status.textContent === "connected" || status.textContent === "connecting…") status.textContent = "closed";
      };
    }
    button.addEventListener("click", function () {
      if (socket) socket.close();
      else open();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("[data-console]");
    for (var i = 0; i < boxes.length; i++) setup(boxes[i]);
  });
})();
