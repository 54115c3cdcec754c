// The API tokens page: copy the new token; confirm before revoking one.
(function () {
  "use strict";
  const copy = document.getElementById("copy");
  if (copy) {
    const field = document.getElementById("new-token");
    field.addEventListener("focus", () => field.select());
    copy.addEventListener("click", async () => {
      field.select();
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (e) {
        document.execCommand("copy");  // older browsers, or no clipboard permission
      }
      document.getElementById("copied").textContent = copy.dataset.done;
    });
  }
  for (const form of document.querySelectorAll("form.revoke")) {
    form.addEventListener("submit", (event) => {
      const button = form.querySelector("button");
      if (!window.confirm(button.dataset.confirm)) { event.preventDefault(); }
    });
  }
})();
