// Receipts (the signed-in receipt page and the public one): a button that prints the page.
// Served from 'self' like app.js; the CSP allows no inline script.
document.addEventListener("click", function (event) {
  var button = event.target.closest ? event.target.closest("[data-print]") : null;
  if (button) {
    event.preventDefault();
    window.print();
  }
});
