// Forms that ask before they act: a <form data-confirm="Question ?"> is sent only once the
// person has answered yes. Without script the form is sent as it is (the server checks it).
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) {
      return;
    }
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });
})();
