// TokenHub web app: helpers shared by every page (loaded first, exposes `TH`).
// Values from users, upstreams or the database only ever reach the page as text
// nodes (`el` never parses HTML), so they cannot become markup.
// Every word a page shows comes from the message catalogue of the page's language
// (web/i18n/*.json, loaded before this script as `self.TH_MESSAGES`) through `t`.
"use strict";

const TH = (() => {
  let csrf = null;
  const messages = self.TH_MESSAGES || {};
  /** The page's language as the server chose it (`<html lang>`): "en" or "zh-CN". */
  const locale = document.documentElement.lang || "en";

  /** The message `id` of the page's language, `{name}` placeholders filled from `params`. */
  function t(id, params) {
    const template = messages[id] ?? id;
    if (!params) return template;
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
  }

  /** A value the API names (a status, a kind) in the page's language: `group.value`, else as it is. */
  function label(group, value) {
    return messages[`${group}.${value}`] ?? String(value);
  }

  /** `one` or `other` form of a counted message (`id.one`, `id.other`), with `{n}` filled. */
  function plural(id, n, params = {}) {
    return t(`${id}.${Number(n) === 1 ? "one" : "other"}`, { n: count(n), ...params });
  }

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** Calls the management API with the session cookie; throws ApiError on failure. */
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (csrf && method !== "GET") headers["X-CSRF-Token"] = csrf;
    const response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    let value = null;
    try {
      value = text ? JSON.parse(text) : null;
    } catch {
      value = text;
    }
    if (!response.ok) {
      const error = (value && value.error) || {};
      throw new ApiError(response.status, error.code || "error", error.message || `HTTP ${response.status}`);
    }
    return value;
  }

  /** The current session ({user, csrf_token}) or null when not logged in. */
  async function session() {
    try {
      const current = await api("GET", "/api/auth/session");
      csrf = current.csrf_token;
      return current;
    } catch (error) {
      if (error.status === 401) return null;
      throw error;
    }
  }

  function setCsrf(token) {
    csrf = token;
  }

  function csrfToken() {
    return csrf;
  }

  /** Builds an element. `attrs`: class, text, dataset, on<event> handlers, other attributes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name === "dataset") Object.assign(node.dataset, value);
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value === true) node.setAttribute(name, "");
      else node.setAttribute(name, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /**
   * The one money format of every page (the server's price list uses the same rule):
   * "$1.00", "$0.000123" — at least 2 decimals, up to 6 (cut, never rounded up).
   */
  function usd(value) {
    const text = String(value ?? "0");
    const negative = text.startsWith("-");
    const [whole, fraction = ""] = text.replace("-", "").split(".");
    const shown = fraction.slice(0, 6).replace(/0+$/, "").padEnd(2, "0");
    return `${negative ? "-" : ""}$${whole || "0"}.${shown}`;
  }

  /** The model id rule of the server (catalog::valid_model_id): 1 to `max` bytes, no whitespace or control characters. */
  function validModelId(id, max = 200) {
    return id.length > 0 && new TextEncoder().encode(id).length <= max && !/[\s\p{Cc}]/u.test(id);
  }

  /**
   * Labels every cell with its column's header (`data-label`), so that on a phone the
   * stylesheet can show each row as a card of "label: value" lines.
   */
  function labelCells(table) {
    const head = table.tHead?.rows[0];
    if (!head) return;
    const labels = [...head.cells].map((th) => th.dataset.label ?? th.textContent.trim());
    for (const body of table.tBodies) {
      for (const row of body.rows) {
        let column = 0;
        for (const cell of row.cells) {
          const label = labels[column];
          if (label && cell.colSpan === 1 && !cell.hasAttribute("data-label")) cell.dataset.label = label;
          column += cell.colSpan;
        }
      }
    }
  }

  /** Decimal USD string from nano-USD (BigInt-safe). */
  function nanosToUsd(nanos) {
    const n = BigInt(nanos);
    const negative = n < 0n;
    const abs = negative ? -n : n;
    const whole = abs / 1000000000n;
    const fraction = (abs % 1000000000n).toString().padStart(9, "0").replace(/0+$/, "");
    return `${negative ? "-" : ""}${whole}${fraction ? "." + fraction : ""}`;
  }

  function time(ms) {
    if (ms === null || ms === undefined) return "—";
    return new Date(ms).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
  }

  function count(n) {
    return Number(n || 0).toLocaleString();
  }

  async function copy(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = el("textarea", { class: "sr-only" }, text);
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    if (button) {
      const label = button.textContent;
      button.textContent = t("common.copied");
      setTimeout(() => (button.textContent = label), 1500);
    }
  }

  function copyButton(text, label = t("common.copy")) {
    const button = el("button", { type: "button", class: "copy" }, label);
    button.addEventListener("click", () => copy(typeof text === "function" ? text() : text, button));
    return button;
  }

  /** A notice that replaces any previous one in `container`. */
  function notice(container, message, kind = "error") {
    container.querySelectorAll(":scope > .notice").forEach((n) => n.remove());
    const node = el("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
    container.prepend(node);
    return node;
  }

  /** Runs `action`, showing its error (if any) as a notice in `container`. */
  async function guard(container, action) {
    try {
      return await action();
    } catch (error) {
      notice(container, error.message || String(error));
      return undefined;
    }
  }

  /** Accessible tabs: `[role=tab]` buttons controlling `[role=tabpanel]`s. */
  function tabs(root, onSelect) {
    const list = root.querySelectorAll('[role="tab"]');
    const select = (tab) => {
      for (const other of list) {
        const on = other === tab;
        other.setAttribute("aria-selected", String(on));
        other.tabIndex = on ? 0 : -1;
        const panel = document.getElementById(other.getAttribute("aria-controls"));
        if (panel) panel.hidden = !on;
      }
      if (onSelect) onSelect(tab);
    };
    list.forEach((tab, i) => {
      tab.addEventListener("click", () => select(tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = list[(i + step + list.length) % list.length];
        next.focus();
        select(next);
      });
    });
    select([...list].find((t) => t.getAttribute("aria-selected") === "true") || list[0]);
    return select;
  }

  /** Sorts a table's rows when a header button is clicked (numbers by data-sort). */
  function sortable(table) {
    const headers = [...table.tHead.rows[0].cells];
    headers.forEach((th, column) => {
      const button = th.querySelector("button");
      if (!button) return;
      button.addEventListener("click", () => {
        const ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach((h) => h.removeAttribute("aria-sort"));
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        const body = table.tBodies[0];
        const key = (row) => {
          const cell = row.cells[column];
          const raw = cell.dataset.sort;
          return raw !== undefined ? Number(raw) : cell.textContent.trim().toLowerCase();
        };
        const rows = [...body.rows].sort((a, b) => {
          const x = key(a);
          const y = key(b);
          const order = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? order : -order;
        });
        body.append(...rows);
      });
    });
  }

  /**
   * A bar chart (bars: first series) with an optional line (second series), drawn as
   * inline SVG. `points`: [{label, bar, line}].
   */
  function chart(points, { barLabel, lineLabel, height = 180, barFormat = axisNumber, lineFormat = axisNumber } = {}) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = (tag, attrs, text) => {
      const node = document.createElementNS(ns, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
      if (text !== undefined) node.textContent = text;
      return node;
    };
    const width = 640;
    // Room for the value axes: bars on the left, the line on the right.
    const pad = { left: 52, right: lineLabel ? 52 : 8, top: 12, bottom: 22 };
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
    root.append(svg("title", {}, lineLabel ? t("chart.title_two", { bar: barLabel || "", line: lineLabel }) : t("chart.title_one", { bar: barLabel || "" })));
    const maxBar = Math.max(...points.map((p) => p.bar), 0) || 1;
    const maxLine = Math.max(...points.map((p) => p.line || 0), 0) || 1;
    const inner = { w: width - pad.left - pad.right, h: height - pad.top - pad.bottom };
    const step = inner.w / Math.max(points.length, 1);
    root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: pad.top + inner.h, y2: pad.top + inner.h, class: "axis" }));
    // Value axes: 0, half and the top of each scale, with faint grid lines.
    for (const share of [0, 0.5, 1]) {
      const y = pad.top + inner.h - share * inner.h;
      if (share) root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
      root.append(svg("text", { x: pad.left - 6, y: y + 4, "text-anchor": "end", class: "axis-value" }, barFormat(maxBar * share)));
      if (lineLabel) root.append(svg("text", { x: width - pad.right + 6, y: y + 4, "text-anchor": "start", class: "axis-value line-value" }, lineFormat(maxLine * share)));
    }
    const linePoints = [];
    points.forEach((p, i) => {
      const x = pad.left + i * step;
      const h = (p.bar / maxBar) * inner.h;
      const bar = svg("rect", { x: x + step * 0.15, y: pad.top + inner.h - h, width: Math.max(step * 0.7, 1), height: h, class: "bar" });
      bar.append(svg("title", {}, `${p.label}: ${p.barText ?? p.bar}${lineLabel ? `, ${p.lineText ?? p.line}` : ""}`));
      root.append(bar);
      if (lineLabel) linePoints.push(`${x + step / 2},${pad.top + inner.h - ((p.line || 0) / maxLine) * inner.h}`);
      const every = Math.ceil(points.length / 8);
      if (i % every === 0) root.append(svg("text", { x: x + step / 2, y: height - 6, "text-anchor": "middle" }, p.label));
    });
    if (lineLabel && linePoints.length) root.append(svg("polyline", { points: linePoints.join(" "), class: "line" }));
    const legend = el(
      "div",
      { class: "legend" },
      el("span", {}, el("i", { class: "swatch-bar" }), barLabel || ""),
      lineLabel ? el("span", {}, el("i", { class: "swatch-line" }), lineLabel) : null,

    );
    return el("figure", { class: "card" }, root, legend);
  }

  /** A compact axis value: 1.2K, 3.4M, 0.0012. */
  function axisNumber(value) {
    if (value === 0) return "0";
    if (Math.abs(value) >= 1e6) return `${+(value / 1e6).toPrecision(3)}M`;
    if (Math.abs(value) >= 1e3) return `${+(value / 1e3).toPrecision(3)}K`;
    return String(+value.toPrecision(2));
  }

  /** Days (YYYY-MM-DD, UTC) from `days` ago to today, for filling gaps in a series. */
  function lastDays(days) {
    const out = [];
    const now = Date.now();
    for (let i = days - 1; i >= 0; i--) out.push(new Date(now - i * 86400000).toISOString().slice(0, 10));
    return out;
  }

  // Every table, rendered by the server or built later by a page script, gets its labels.
  document.querySelectorAll("table").forEach(labelCells);
  new MutationObserver((changes) => {
    for (const change of changes) {
      for (const node of change.addedNodes) {
        if (node.nodeType !== 1) continue;
        if (node.tagName === "TABLE") labelCells(node);
        else if (node.tagName === "TR" || node.tagName === "TBODY") {
          const table = node.closest("table");
          if (table) labelCells(table);
        } else node.querySelectorAll?.("table").forEach(labelCells);
      }
    }
  }).observe(document.body, { childList: true, subtree: true });

  // The header's log-out button (signed-in pages): ends the session, back to the docs.
  document.getElementById("header-logout")?.addEventListener("click", async (event) => {
    event.currentTarget.disabled = true;
    try {
      if (!csrf) await session();
      await api("POST", "/api/auth/logout");
    } finally {
      location.assign("/");
    }
  });

  // The header's language switch: remembers the choice in a cookie (read by the server,
  // so the next page is right from its first byte) and reloads this page, hash included.
  document.getElementById("lang-switch")?.addEventListener("click", (event) => {
    event.preventDefault();
    document.cookie = `th_lang=${event.currentTarget.dataset.lang}; path=/; max-age=31536000; samesite=lax`;
    location.reload();
  });

  // Copy buttons rendered by the server: <button data-copy-from="element-id">.
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy-from]");
    if (!button) return;
    const source = document.getElementById(button.dataset.copyFrom);
    if (source) copy(source.textContent, button);
  });

  return { t, plural, label, locale, api, session, setCsrf, csrfToken, el, usd, validModelId, labelCells, nanosToUsd, time, count, copy, copyButton, notice, guard, tabs, sortable, chart, lastDays, ApiError };
})();
