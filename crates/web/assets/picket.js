// Picket's page script: selection on the Projects page. Everything here is an enhancement; the
// forms work without it.
(function () {
  "use strict";
  function update(form) {
    var sel = "input[name=project], input[name=finding], input[name=rule], input[name=repository]";
    var boxes = form.querySelectorAll(sel);
    var checked = [].filter.call(boxes, function (b) { return b.checked; }).length;
    var all = form.querySelector("input[name=all]");
    var count = form.querySelector("[data-selected-count]");
    if (count) {
      count.textContent = all && all.checked ? count.dataset.total + " (all matching)" : String(checked);
    }
    var head = form.querySelector("input[data-select-page]");
    if (head) {
      head.checked = boxes.length > 0 && checked === boxes.length;
      head.indeterminate = checked > 0 && checked < boxes.length;
    }
  }
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!(t instanceof HTMLInputElement)) return;
    var form = t.form;
    if (!form || !form.hasAttribute("data-selection")) return;
    if (t.hasAttribute("data-select-page")) {
      form.querySelectorAll("input[name=project], input[name=finding], input[name=rule], input[name=repository]").forEach(function (b) { b.checked = t.checked; });
    }
    if (t.name !== "all" && !t.hasAttribute("data-select-page") && !t.checked) {
      var all = form.querySelector("input[name=all]");
      if (all) all.checked = false;
    }
    update(form);
  });
  // A live update replaces a whole row: keep its checkbox as the user left it.
  var keep = {};
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    var row = e.target;
    var box = row && row.querySelector && row.querySelector("input[name=project]");
    if (box) keep[box.value] = box.checked;
  });
  document.addEventListener("htmx:sseMessage", function () {
    Object.keys(keep).forEach(function (id) {
      var box = document.querySelector("input[name=project][value='" + id + "']");
      if (box) box.checked = keep[id];
    });
    keep = {};
    document.querySelectorAll("form[data-selection]").forEach(update);
  });
  // A file input with data-fills copies the chosen file's text into that textarea.
  document.addEventListener("change", function (e) {
    var t = e.target;
    if (!(t instanceof HTMLInputElement) || t.type !== "file" || !t.dataset.fills) return;
    var box = document.getElementById(t.dataset.fills);
    if (!box || !t.files || !t.files[0]) return;
    t.files[0].text().then(function (text) { box.value = text; });
  });
  document.addEventListener("htmx:afterSettle", function () {
    document.querySelectorAll("form[data-selection]").forEach(update);
  });
})();
