// The docs and pricing pages: sample tabs, sortable and filterable model tables.
"use strict";

document.querySelectorAll("[data-tabs]").forEach((root) => TH.tabs(root));
document.querySelectorAll("table.sortable").forEach((table) => TH.sortable(table));

document.querySelectorAll("form[data-filter-table]").forEach((form) => {
  const table = document.getElementById(form.dataset.filterTable);
  const counter = document.getElementById("price-count");
  const apply = () => {
    const query = form.elements.q.value.trim().toLowerCase();
    const provider = form.elements.provider.value;
    const freeOnly = form.elements.free.checked;
    let shown = 0;
    for (const row of table.tBodies[0].rows) {
      const visible =
        (!query || row.cells[0].textContent.toLowerCase().includes(query)) &&
        (!provider || row.cells[1].textContent === provider) &&
        (!freeOnly || row.dataset.free === "1");
      row.hidden = !visible;
      if (visible) shown++;
    }
    if (counter) counter.textContent = TH.plural("count.models", shown);
  };
  form.addEventListener("input", apply);
  form.addEventListener("submit", (event) => event.preventDefault());
});
