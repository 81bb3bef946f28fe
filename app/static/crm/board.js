/* The pipeline boards: move a card with its "Move to" list (keyboard) or by dragging it onto a
   column (mouse). Every move is a POST with the page's CSRF token to the same rules as the
   record's own page; the answer (JSON) moves the card or says on the card why it did not. */
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || board.dataset.canMove !== "true") {
    return;
  }
  var field = board.dataset.field;
  var announcer = document.getElementById("board-announcer");

  function columnOf(key) {
    return board.querySelector('.board-column[data-column="' + key + '"]');
  }

  function needsReason(key) {
    var column = columnOf(key);
    return column && column.dataset.needsReason === "true";
  }

  function say(card, text, refused) {
    var message = card.querySelector(".board-card-message");
    message.textContent = text;
    message.classList.toggle("text-danger", !!refused);
    message.classList.toggle("text-success", !refused);
    card.classList.toggle("board-card-refused", !!refused);
    if (announcer) {
      announcer.textContent = text;
    }
  }

  function addToCount(key, delta) {
    var badge = columnOf(key).querySelector(".board-count");
    var n = parseInt(badge.dataset.count, 10) + delta;
    badge.dataset.count = String(n);
    badge.textContent = n.toLocaleString("en");
  }

  function showReason(card) {
    var select = card.querySelector(".board-move-to");
    var show = needsReason(select.value) && select.value !== card.dataset.column;
    card.querySelectorAll(".board-reason, .board-reason-label").forEach(function (el) {
      el.hidden = !show;
    });
  }

  function place(card, to) {
    var from = card.dataset.column;
    var list = columnOf(to).querySelector(".board-cards");
    list.insertBefore(card, list.firstChild);
    card.dataset.column = to;
    card.querySelector(".board-move-to").value = to;
    card.querySelector(".board-reason").value = "";
    addToCount(from, -1);
    addToCount(to, 1);
    showReason(card);
  }

  function move(card, to, reason) {
    if (to === card.dataset.column) {
      say(card, "It is already in this column.", true);
      return;
    }
    var body = new URLSearchParams();
    body.set(field, to);
    body.set("csrf_token", board.dataset.csrf);
    if (reason) {
      body.set("reason", reason);
    }
    card.setAttribute("aria-busy", "true");
    fetch(board.dataset.moveUrl + "/" + card.dataset.id, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Accept": "application/json", "X-CSRFToken": board.dataset.csrf},
      body: body
    })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (type.indexOf("application/json") === -1) {
          return {ok: false, message: "The move was not accepted (" + response.status +
            "); reload the page and try again."};
        }
        return response.json().then(function (answer) {
          return {ok: response.ok, message: answer.message};
        });
      })
      .then(function (result) {
        if (result.ok) {
          place(card, to);
          card.focus();
        } else {
          card.querySelector(".board-move-to").value = card.dataset.column;
          showReason(card);
        }
        say(card, result.ok ? result.message : "Not moved: " + result.message, !result.ok);
      })
      .catch(function () {
        say(card, "Not moved: the server could not be reached.", true);
      })
      .then(function () {
        card.removeAttribute("aria-busy");
      });
  }

  board.querySelectorAll(".board-card").forEach(function (card) {
    var form = card.querySelector(".board-move");
    var select = card.querySelector(".board-move-to");
    showReason(card);
    select.addEventListener("change", function () { showReason(card); });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      move(card, select.value, card.querySelector(".board-reason").value.trim());
    });
    card.addEventListener("dragstart", function (event) {
      event.dataTransfer.setData("text/plain", card.dataset.id);
      event.dataTransfer.effectAllowed = "move";
      card.classList.add("board-card-dragging");
    });
    card.addEventListener("dragend", function () {
      card.classList.remove("board-card-dragging");
    });
  });

  board.querySelectorAll(".board-column").forEach(function (column) {
    column.addEventListener("dragover", function (event) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      column.classList.add("board-column-target");
    });
    column.addEventListener("dragleave", function () {
      column.classList.remove("board-column-target");
    });
    column.addEventListener("drop", function (event) {
      event.preventDefault();
      column.classList.remove("board-column-target");
      var id = event.dataTransfer.getData("text/plain");
      var card = board.querySelector('.board-card[data-id="' + id + '"]');
      if (!card) {
        return;
      }
      var to = column.dataset.column;
      var reason = card.querySelector(".board-reason").value.trim();
      if (!reason && needsReason(to) && to !== card.dataset.column) {
        reason = (window.prompt("Why is it " + to + "?") || "").trim();
      }
      move(card, to, reason);
    });
  });
})();
