// The chat client: reconnects with backoff when the socket drops (server restarts).
(function () {
  "use strict";
  var log = document.getElementById("log");
  var status = document.getElementById("status");
  var form = document.getElementById("send");
  var input = document.getElementById("message");
  var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  var url = scheme + window.location.host + window.CHAT_SOCKET_PATH;
  var socket = null;
  var delay = 250;

  function show(text, cls) {
    var item = document.createElement("li");
    item.textContent = text;
    if (cls) item.className = cls;
    log.appendChild(item);
    log.scrollTop = log.scrollHeight;
  }

  function connect() {
    socket = new WebSocket(url);
    socket.onopen = function () {
      delay = 250;
      status.textContent = "connected";
      status.dataset.state = "open";
    };
    socket.onmessage = function (event) {
      var data = JSON.parse(event.data);
      if (data.type === "message") show(data.message, "message");
    };
    socket.onclose = function () {
      status.textContent = "reconnecting…";
      status.dataset.state = "closed";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ message: text }));
    input.value = "";
  });

  connect();
})();
