// The top bar's menus are <details> elements: they work without this script. It only closes
// an open menu when another opens, on a click elsewhere, or with Escape (focus back on it).
(function () {
  "use strict";

  function menus() {
    return Array.from(document.querySelectorAll("details[data-menu]"));
  }

  document.addEventListener("click", function (event) {
    menus().forEach(function (menu) {
      if (menu.open && !menu.contains(event.target)) {
        menu.open = false;
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    menus().forEach(function (menu) {
      if (menu.open) {
        menu.open = false;
        menu.querySelector("summary").focus();
      }
    });
  });
})();
