// Bazaar's only script. No inline handlers anywhere: behaviour hangs off data attributes.
(function () {
  "use strict";

  // Buttons marked data-confirm ask before their form is submitted.
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var message = submitter && submitter.getAttribute("data-confirm");
    if (message && !window.confirm(message)) {
      event.preventDefault();
    }
  }, true);

  // A form that arrived over a live socket was rendered without a request, so without a CSRF
  // token: it posts with the page's own (the one htmx sends as X-CSRFToken).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.method !== "post" || form.querySelector('input[name="csrfmiddlewaretoken"]')) return;
    var headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    if (!headers["X-CSRFToken"]) return;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrfmiddlewaretoken";
    input.value = headers["X-CSRFToken"];
    form.appendChild(input);
  });

  // Checkout: typing a new address chooses it (the radio inside the "new address" disclosure).
  document.addEventListener("input", function (event) {
    var details = event.target.closest && event.target.closest("[data-new-address]");
    var radio = details && details.querySelector('input[type="radio"][value="new"]');
    if (radio && event.target !== radio) radio.checked = true;
  });

  // Server-side messages rendered into fragments are moved into the page's message area.
  document.addEventListener("htmx:afterSwap", function () {
    var target = document.getElementById("messages");
    if (target) {
      target.querySelectorAll(".message").forEach(function (node, index, all) {
        if (all.length > 3 && index < all.length - 3) node.remove();
      });
    }
  });
})();

// Live pages. An element with ws-connect (htmx ws extension) receives HTML fragments that
// are swapped out of band by id; each carries data-seq, the version of what it shows.
(function () {
  "use strict";

  var NOTICE_MS = 8000;

  function seqOf(node) {
    var value = node && node.getAttribute && node.getAttribute("data-seq");
    return value ? Number(value) : null;
  }

  // A fragment older than the one on the page arrived late or twice: keep the page's.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var fragment = event.detail.fragment;
    var incoming = fragment && fragment.firstElementChild;
    var current = seqOf(event.detail.target);
    var next = seqOf(incoming);
    if (current !== null && next !== null && next < current) {
      event.detail.shouldSwap = false;
    }
  });

  // The same for a poll's answer: a live message may have replaced the polling element (or
  // brought a newer state) while the poll was on its way.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var current = seqOf(target);
    if (current === null || !target.id) return;
    if (!target.isConnected) {
      event.detail.shouldSwap = false;
      return;
    }
    var template = document.createElement("template");
    template.innerHTML = event.detail.serverResponse || "";
    var next = seqOf(template.content.getElementById(target.id));
    if (next !== null && next < current) {
      event.detail.shouldSwap = false;
    }
  });

  // On every (re)connect the page re-fetches its state, so a message lost while the socket
  // was down (the channel layer delivers at most once) never leaves the page wrong.
  // The socket's element names the page's live regions in hx-select-oob; they are taken
  // from a fresh GET of the page as it is now (filters in the address included). Other
  // live parts listen for "live:resync" (e.g. hx-trigger="live:resync from:body").
  function resync(socketElement) {
    if (!socketElement || !socketElement.hasAttribute("data-live-resync")) return;
    window.htmx.trigger(socketElement, "live:resync");
    if (socketElement.hasAttribute("hx-select-oob")) {
      window.htmx.ajax("GET", window.location.pathname + window.location.search, {
        source: socketElement,
        swap: "none"
      });
    }
  }
  document.addEventListener("htmx:wsOpen", function (event) {
    event.target.setAttribute("data-live-connected", "");
    resync(event.target);
  });
  document.addEventListener("htmx:wsClose", function (event) {
    event.target.removeAttribute("data-live-connected");
  });

  // Polling (hx-trigger="every …") is the fallback for when the live socket is down; while
  // it is connected, its messages keep the page current and the polls are skipped. An
  // element marked data-poll-while-live polls anyway: it shows changes that are no events
  // (a payment's retries, an outcome the processor has yet to confirm).
  document.addEventListener("htmx:beforeRequest", function (event) {
    var elt = event.detail.elt;
    var trigger = elt.getAttribute("hx-trigger") || "";
    if (/(^|[\s,])every\s/.test(trigger) && !elt.hasAttribute("data-poll-while-live") &&
        document.querySelector("[data-live-connected]")) {
      event.preventDefault();
    }
  });

  // The live notice region shows the latest notice only, with how many arrived in a row; it
  // empties itself NOTICE_MS after the last one and never blocks the page.
  var noticeTimer = null;
  document.addEventListener("htmx:wsAfterMessage", function () {
    var region = document.getElementById("live-notices");
    var notice = region && region.querySelector(".live-notice:not([data-counted])");
    if (!notice) return;
    notice.setAttribute("data-counted", "");
    var count = Number(region.getAttribute("data-count") || "0") + 1;
    region.setAttribute("data-count", String(count));
    if (count > 1) {
      var more = document.createElement("span");
      more.className = "live-notice-count";
      more.textContent = count + " updates";
      notice.appendChild(more);
    }
    window.clearTimeout(noticeTimer);
    noticeTimer = window.setTimeout(function () {
      region.replaceChildren();
      region.removeAttribute("data-count");
    }, NOTICE_MS);
  });

  if (!window.htmx) return;
  // "live" extension: a fragment marked data-live-prepend="<container id>" replaces the
  // element with its id when the page has one, or else is inserted at the top of that
  // container (a new row in a list). With no such container, or a filtered one
  // (data-live-filtered), the page re-fetches instead.
  window.htmx.defineExtension("live", {
    transformResponse: function (text, xhr, element) {
      if (xhr) return text; // only websocket messages
      var template = document.createElement("template");
      template.innerHTML = text;
      var missing = false;
      Array.prototype.slice.call(template.content.children).forEach(function (node) {
        var into = node.getAttribute("data-live-prepend");
        if (!into) return;
        var container = document.getElementById(into);
        if (container && container.hasAttribute("data-live-filtered")) {
          // A filtered list: whether the order (still) belongs in it, and the count above
          // it, are the server's to say.
          node.remove();
          missing = true;
          return;
        }
        if (node.id && document.getElementById(node.id)) return;
        if (!container) {
          node.remove();
          missing = true;
          return;
        }
        var wrapper = document.createElement(container.tagName.toLowerCase());
        wrapper.setAttribute("hx-swap-oob", "afterbegin:#" + into);
        node.parentNode.insertBefore(wrapper, node);
        wrapper.appendChild(node);
      });
      if (missing) resync(element);
      return template.innerHTML;
    }
  });
})();
