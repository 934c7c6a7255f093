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
