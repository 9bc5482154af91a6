// PesaTab's only script of its own (served from 'self'; the CSP allows no inline script).
// Status fragments poll every 2 s; skip those polls while the page is hidden, so a phone in a
// pocket or a background tab costs nothing. Coming back triggers an immediate refresh
// (hx-trigger includes "visibilitychange from:document").
document.addEventListener("htmx:beforeRequest", function (event) {
  if (document.hidden && event.detail.elt.hasAttribute("data-poll")) {
    event.preventDefault();
  }
});
