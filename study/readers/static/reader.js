// The reading page: zoom and pan, lesion marks by clicking, the aided overlay, keyboard shortcuts.
// Progressive: the form works without this script (marks, zoom and shortcuts need it).
(function () {
  "use strict";
  var viewer = document.getElementById("viewer"), stage = document.getElementById("stage");
  var img = document.getElementById("case-image"), form = document.getElementById("reading-form");
  if (!viewer || !img || !form) { return; }
  var SVGNS = "http://www.w3.org/2000/svg";
  var marksField = document.getElementById("marks"), marksLayer = document.getElementById("marks-layer");
  var overlayLayer = document.getElementById("overlay-layer"), markMode = document.getElementById("mark-mode");
  var markClass = document.getElementById("mark-class"), markCount = document.getElementById("mark-count");
  var marks = [];
  try { marks = JSON.parse(marksField.value || "[]"); } catch (e) { marks = []; }
  var scale = 1, tx = 0, ty = 0, fit = 1;

  function apply() { stage.style.transform = "translate(" + tx + "px," + ty + "px) scale(" + scale + ")"; }
  function fitImage() {
    var w = img.naturalWidth || 1, h = img.naturalHeight || 1;
    fit = Math.min(viewer.clientWidth / w, viewer.clientHeight / h);
    scale = fit; tx = (viewer.clientWidth - w * scale) / 2; ty = (viewer.clientHeight - h * scale) / 2; apply();
  }
  function zoomAt(factor, cx, cy) {
    var s = Math.max(fit * 0.5, Math.min(fit * 16, scale * factor));
    tx = cx - (cx - tx) * (s / scale); ty = cy - (cy - ty) * (s / scale); scale = s; apply();
  }
  function sizeLayers() {
    [marksLayer, overlayLayer].forEach(function (svg) {
      if (!svg) { return; }
      svg.setAttribute("width", img.naturalWidth); svg.setAttribute("height", img.naturalHeight);
      svg.setAttribute("viewBox", "0 0 " + img.naturalWidth + " " + img.naturalHeight);
    });
  }
  function drawMarks() {
    while (marksLayer.firstChild) { marksLayer.removeChild(marksLayer.firstChild); }
    var r = Math.max(4, img.naturalWidth / 150);
    marks.forEach(function (m) {
      var c = document.createElementNS(SVGNS, "circle");
      c.setAttribute("cx", m.x); c.setAttribute("cy", m.y); c.setAttribute("r", r);
      c.setAttribute("class", "mark"); c.setAttribute("fill", "none"); c.setAttribute("stroke", "#00e5ff");
      c.setAttribute("stroke-width", r / 2); marksLayer.appendChild(c);
    });
    marksField.value = JSON.stringify(marks);
    markCount.textContent = marks.length ? marks.length + " mark(s)" : "";
  }
  function drawOverlay() {
    var node = document.getElementById("overlay-data");
    if (!overlayLayer || !node) { return; }
    JSON.parse(node.textContent).forEach(function (d) {
      var rect = document.createElementNS(SVGNS, "rect");
      rect.setAttribute("x", d.x); rect.setAttribute("y", d.y); rect.setAttribute("width", d.w);
      rect.setAttribute("height", d.h); rect.setAttribute("fill", "none"); rect.setAttribute("stroke", "#ffb703");
      rect.setAttribute("stroke-width", Math.max(2, img.naturalWidth / 300)); rect.setAttribute("class", "detection");
      var t = document.createElementNS(SVGNS, "title"); t.textContent = d["class"] + " " + d.score;
      rect.appendChild(t); overlayLayer.appendChild(rect);
    });
  }
  function ready() { sizeLayers(); fitImage(); drawMarks(); drawOverlay(); }
  if (img.complete && img.naturalWidth) { ready(); } else { img.addEventListener("load", ready); }
  window.addEventListener("resize", fitImage);

  viewer.addEventListener("wheel", function (e) {
    e.preventDefault(); var b = viewer.getBoundingClientRect();
    zoomAt(e.deltaY < 0 ? 1.2 : 1 / 1.2, e.clientX - b.left, e.clientY - b.top);
  }, { passive: false });
  var drag = null;
  viewer.addEventListener("mousedown", function (e) { drag = { x: e.clientX, y: e.clientY, tx: tx, ty: ty, moved: false }; });
  window.addEventListener("mousemove", function (e) {
    if (!drag) { return; }
    var dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 4) { drag.moved = true; }
    tx = drag.tx + dx; ty = drag.ty + dy; apply();
  });
  window.addEventListener("mouseup", function (e) {
    if (drag && !drag.moved && markMode.checked && e.target.closest && e.target.closest("#viewer")) {
      var b = img.getBoundingClientRect();
      var x = (e.clientX - b.left) / b.width * img.naturalWidth, y = (e.clientY - b.top) / b.height * img.naturalHeight;
      if (x >= 0 && y >= 0 && x <= img.naturalWidth && y <= img.naturalHeight) {
        marks.push({ x: Math.round(x * 10) / 10, y: Math.round(y * 10) / 10, "class": markClass.value }); drawMarks();
      }
    }
    drag = null;
  });
  function centre() { return [viewer.clientWidth / 2, viewer.clientHeight / 2]; }
  document.getElementById("zoom-in").addEventListener("click", function () { var c = centre(); zoomAt(1.5, c[0], c[1]); });
  document.getElementById("zoom-out").addEventListener("click", function () { var c = centre(); zoomAt(1 / 1.5, c[0], c[1]); });
  document.getElementById("zoom-reset").addEventListener("click", fitImage);
  document.getElementById("undo-mark").addEventListener("click", function () { marks.pop(); drawMarks(); });
  var toggle = document.getElementById("toggle-overlay");
  if (toggle) { toggle.addEventListener("change", function () { overlayLayer.style.display = toggle.checked ? "" : "none"; }); }

  var slider = document.getElementById("confidence-slider"), conf = document.getElementById("confidence");
  slider.addEventListener("input", function () { conf.value = slider.value; });
  conf.addEventListener("input", function () { if (conf.value !== "") { slider.value = conf.value; } });
  var na = document.getElementById("not-assessable");
  function syncRequired() { conf.required = !na.checked; }
  na.addEventListener("change", syncRequired); syncRequired();

  document.addEventListener("keydown", function (e) {
    var tag = (e.target.tagName || "").toLowerCase();
    if (tag === "textarea" || (tag === "input" && e.target.type !== "radio" && e.target.type !== "checkbox")) { return; }
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var radio = document.querySelector('.grades input[data-key="' + e.key + '"]');
    if (radio) { radio.checked = true; radio.focus(); e.preventDefault(); return; }
    if (e.key === "n" || e.key === "Enter") { e.preventDefault(); if (form.reportValidity()) { HTMLFormElement.prototype.submit.call(form); } return; }
    if (e.key === "m") { markMode.checked = !markMode.checked; return; }
    if (e.key === "o" && toggle) { toggle.checked = !toggle.checked; toggle.dispatchEvent(new Event("change")); return; }
    if (e.key === "+") { var c = centre(); zoomAt(1.5, c[0], c[1]); } else if (e.key === "-") { var d = centre(); zoomAt(1 / 1.5, d[0], d[1]); }
  });
})();
