// PesaTab's only script of its own (served from 'self'; the CSP allows no inline script).
// A refusal the cashier must read comes back as 422 (the form with its sentences) or 429 (the
// push limit, said on the same form): htmx drops 4xx answers by default, which left the pay
// panel silent. Those two are swapped in like any answer; other errors are still not.
htmx.config.responseHandling = [
  { code: "204", swap: false },
  { code: "[23]..", swap: true },
  { code: "422", swap: true, error: false },
  { code: "429", swap: true, error: false },
  { code: "[45]..", swap: false, error: true },
  { code: "...", swap: false },
];

// Status fragments poll every 2 s; skip those polls while the page is hidden, so a phone in a
// pocket or a background tab costs nothing. Coming back triggers an immediate refresh
// (hx-trigger includes "visibilitychange from:document").
document.addEventListener("htmx:beforeRequest", function (event) {
  if (document.hidden && event.detail.elt.hasAttribute("data-poll")) {
    event.preventDefault();
  }
});

// The list of money paid from the M-Pesa menu (#incoming) stops polling after a quiet spell
// (app/tabs/incoming.py): each of its requests says how many seconds ago the cashier last
// tapped or typed on this page, or came back to it (`quiet`), so a screen in use stays live.
(function () {
  var touched = Date.now();
  function touch() {
    touched = Date.now();
  }
  document.addEventListener("pointerdown", touch, true);
  document.addEventListener("keydown", touch, true);
  document.addEventListener(
    "visibilitychange",
    function () {
      if (!document.hidden) {
        touch();
      }
    },
    true
  );
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id === "incoming") {
      event.detail.parameters.quiet = Math.floor((Date.now() - touched) / 1000);
    }
  });
})();

// The "waiting 0:12 of 1:30" clock and its progress bar run here, not on the server: a poll
// answers 204 (nothing swapped) while the payment is unchanged. Each fragment says how long it
// had been waiting when it was rendered (data-elapsed, the server's count, so the phone's own
// clock being wrong does not matter); the screen adds the time since it arrived.
(function () {
  var arrived = new WeakMap();

  function stamp(root) {
    var now = Date.now();
    var found = root.querySelectorAll ? root.querySelectorAll("[data-elapsed]") : [];
    if (root.hasAttribute && root.hasAttribute("data-elapsed")) {
      found = [root].concat(Array.prototype.slice.call(found));
    }
    Array.prototype.forEach.call(found, function (el) {
      if (!arrived.has(el)) {
        arrived.set(el, now);
      }
    });
  }

  function format(seconds) {
    var minutes = Math.floor(seconds / 60);
    var secs = seconds % 60;
    return minutes + ":" + (secs < 10 ? "0" : "") + secs;
  }

  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed]").forEach(function (el) {
      if (!arrived.has(el)) {
        arrived.set(el, now);
      }
      var base = parseInt(el.getAttribute("data-elapsed"), 10) || 0;
      var seconds = base + Math.max(0, Math.floor((now - arrived.get(el)) / 1000));
      var text = format(seconds);
      if (el.textContent !== text) {
        el.textContent = text;
      }
      var status = el.closest(".payment-status");
      var bar = status && status.querySelector("progress");
      if (bar) {
        var max = parseInt(bar.getAttribute("max"), 10) || 0;
        bar.value = Math.min(seconds, max);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    stamp(document);
  });
  // htmx:load fires for every element htmx inserts, out-of-band swaps included.
  document.addEventListener("htmx:load", function (event) {
    stamp(event.detail.elt || event.target);
  });
  setInterval(tick, 1000);
})();

// Copy buttons (a set-password link on the Staff page): `data-copy` names the input whose value
// is copied. Wired here because the CSP allows no inline script.
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-copy]");
  var field = button && document.getElementById(button.getAttribute("data-copy"));
  if (!field) {
    return;
  }
  var status = button.parentNode.querySelector("[role=status]");
  function said(ok) {
    if (status) {
      // The page says both sentences in the reader's language (data-copied, data-copy-by-hand).
      status.textContent = ok
        ? status.getAttribute("data-copied") || "Copied."
        : status.getAttribute("data-copy-by-hand") || "Select the link and copy it.";
    }
  }
  function byHand() {
    field.focus();
    field.select();
    try {
      said(document.execCommand("copy"));
    } catch (err) {
      said(false);
    }
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(function () {
      said(true);
    }, byHand);
  } else {
    byHand();
  }
});
