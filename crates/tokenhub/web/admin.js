// The admin panel (/admin): dashboard, channels, models and prices, users, redemption
// codes, usage logs, the audit log (root only) and site settings, all over the
// management API. The server only renders this page for admins; the API checks the
// role again on every call. Values from the API reach the page as text (TH.el).
"use strict";

(() => {
  const { api, el, usd, time, count, notice, guard } = TH;
  const root = document.getElementById("admin");
  const isRoot = root.dataset.root === "true";
  const MODEL_ID_MAX = Number(root.dataset.modelIdMax || 200);
  const MODEL_ID_RULE = `1 to ${MODEL_ID_MAX} characters without spaces`;

  /** Marks `input` invalid unless every id in it passes the server's model id rule. */
  function checkModelIds(input, ids) {
    const bad = ids.find((id) => !TH.validModelId(id, MODEL_ID_MAX));
    input.setCustomValidity(bad === undefined ? "" : `“${bad}” is not a valid model id: ${MODEL_ID_RULE}.`);
    return bad === undefined;
  }
  /** The channel types the API accepts (CHANNEL_TYPES in catalog.rs). */
  const CHANNEL_TYPES = ["openai", "deepseek", "qwen", "zhipu", "doubao", "moonshot", "anthropic", "gemini", "demo"];
  const PAGE = 50;
  const USD_PATTERN = "[0-9]+(\\.[0-9]+)?";
  const SIGNED_USD_PATTERN = "-?[0-9]+(\\.[0-9]+)?";

  // ---------------------------------------------------------------- small helpers

  /** A labelled form control; `hint` is a short muted line under it. */
  function field(label, control, hint) {
    return el("label", {}, label, control, hint ? el("span", { class: "muted small" }, hint) : null);
  }

  function button(text, onClick, attrs = {}) {
    return el("button", { type: "button", class: "small ghost", ...attrs, onclick: onClick }, text);
  }

  function badge(text, kind) {
    return el("span", { class: `badge ${kind || ""}` }, text);
  }

  /** A section heading with optional controls (e.g. a Refresh button) beside it. */
  function heading(title, ...controls) {
    return el("div", { class: "admin-bar" }, el("h2", {}, title), ...controls);
  }

  /** Replaces a node's children, leaving out null/undefined ones. */
  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  }

  function refresh(action) {
    return button("Refresh", action, { class: "small ghost refresh" });
  }

  /** A table in a scrolling wrapper. `columns`: label or [label, class] (class "num" etc.). */
  function table(id, columns, rows, empty, { sortable = false } = {}) {
    const head = columns.map((column) => {
      const [label, cls] = Array.isArray(column) ? column : [column, null];
      const content = sortable && label ? el("button", { type: "button" }, label) : label;
      return el("th", { scope: "col", class: cls }, content);
    });
    const body = el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, empty)));
    const node = el("table", { id, class: sortable ? "sortable" : null }, el("thead", {}, el("tr", {}, head)), body);
    if (sortable && rows.length) TH.sortable(node);
    return el("div", { class: "table-wrap" }, node);
  }

  /** Previous/next controls for offset paging; `total` may be unknown (null). */
  function pager({ offset, limit, shown, total, onPage }) {
    const end = offset + shown;
    const more = total === null || total === undefined ? shown === limit : end < total;
    if (offset === 0 && !more) return null;
    const range = `${count(shown ? offset + 1 : offset)}–${count(end)}${total === null || total === undefined ? "" : ` of ${count(total)}`}`;
    return el(
      "nav",
      { class: "pager", "aria-label": "Pages" },
      button("← Previous", () => onPage(Math.max(0, offset - limit)), { disabled: offset === 0 }),
      el("span", { class: "muted small" }, range),
      button("Next →", () => onPage(offset + limit), { disabled: !more }),
    );
  }

  /** `a=1&b=x` from an object, leaving out empty values. */
  function query(params) {
    const q = new URLSearchParams();
    for (const [name, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") q.set(name, String(value));
    }
    return q.toString();
  }

  /** Comma-separated text to a list of non-empty, trimmed items. */
  function splitList(text) {
    return text.split(",").map((s) => s.trim()).filter(Boolean);
  }

  /** Unix ms of local midnight starting the date input's day (`plusDays` later). */
  function dayStart(value, plusDays = 0) {
    const [y, m, d] = value.split("-").map(Number);
    return new Date(y, m - 1, d + plusDays).getTime();
  }

  /** Nano-USD (BigInt) from a decimal USD string, for exact sums. */
  function toNanos(text) {
    const value = String(text ?? "0");
    const negative = value.startsWith("-");
    const [whole, fraction = ""] = value.replace("-", "").split(".");
    const nanos = BigInt(whole || "0") * 1000000000n + BigInt((fraction + "000000000").slice(0, 9));
    return negative ? -nanos : nanos;
  }

  function pct(ratio) {
    return `${(Number(ratio || 0) * 100).toFixed(1)}%`;
  }

  function ms(value) {
    return value === null || value === undefined ? "—" : `${count(Math.round(value))} ms`;
  }

  /** A CSV file built in the browser and downloaded (cells that look like formulas are defused). */
  function downloadCsv(filename, rows) {
    const cell = (value) => {
      let text = value === null || value === undefined ? "" : String(value);
      if (/^[=+@]/.test(text) || (/^-/.test(text) && Number.isNaN(Number(text)))) text = `'${text}`;
      return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
    };
    const csv = rows.map((row) => row.map(cell).join(",")).join("\r\n") + "\r\n";
    const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
    const link = el("a", { href: url, download: filename, class: "sr-only" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  /** Runs a state-changing action; on failure its error shows in `container`, in view. */
  async function run(container, action) {
    const result = await guard(container, action);
    if (result === undefined) {
      const shown = container.querySelector(":scope > .notice.error");
      if (shown) shown.scrollIntoView({ block: "nearest" });
    }
    return result;
  }

  /** A success message at the top of `container` that fades after a while. */
  function done(container, message) {
    const node = notice(container, message, "ok");
    setTimeout(() => node.remove(), 6000);
  }

  /** A model id, or a note for requests refused before they named one. */
  function modelName(id) {
    return id ? el("code", { class: "nowrap" }, id) : el("span", { class: "muted" }, "no model (refused before one was named)");
  }

  // ---------------------------------------------------------------- dashboard

  async function dashboard(panel) {
    const days = TH.lastDays(14);
    const from = Date.parse(`${days[0]}T00:00:00Z`);
    const summary = (group) => api("GET", `/api/admin/usage/summary?${query({ group_by: group, from })}`);
    const [byDay, byModel, byUser] = await Promise.all([summary("day"), summary("model"), summary("user")]);
    const topUsers = [...byUser.data].sort((a, b) => b.requests - a.requests).slice(0, 10);
    const names = new Map(
      await Promise.all(
        topUsers.map((u) =>
          api("GET", `/api/admin/users/${encodeURIComponent(u.group)}`)
            .then((user) => [u.group, user.name])
            .catch(() => [u.group, null]),
        ),
      ),
    );

    const rows = byDay.data;
    const requests = rows.reduce((sum, d) => sum + d.requests, 0);
    const errors = rows.reduce((sum, d) => sum + d.errors, 0);
    const tokens = rows.reduce((sum, d) => sum + d.prompt_tokens + d.completion_tokens, 0);
    const spend = TH.nanosToUsd(rows.reduce((sum, d) => sum + toNanos(d.cost_usd), 0n));
    const withLatency = rows.filter((d) => d.latency_p50_ms !== null && d.requests > 0);
    const weighted = withLatency.reduce((sum, d) => sum + d.latency_p50_ms * d.requests, 0);
    const weight = withLatency.reduce((sum, d) => sum + d.requests, 0);
    const p50 = weight ? weighted / weight : null;
    const p95 = withLatency.length ? Math.max(...withLatency.map((d) => d.latency_p95_ms || 0)) : null;

    const stat = (value, label, id) => el("div", { class: "stat", id }, el("b", {}, value), el("span", {}, label));
    const byDate = new Map(rows.map((d) => [d.group, d]));
    const series = (pick) =>
      days.map((day) => {
        const d = byDate.get(day);
        return { label: day.slice(5), ...pick(d) };
      });
    const traffic = series((d) => ({
      bar: d ? d.requests : 0,
      barText: `${count(d ? d.requests : 0)} requests`,
      line: d ? d.error_rate * 100 : 0,
      lineText: `${pct(d ? d.error_rate : 0)} errors`,
    }));
    const volume = series((d) => ({
      bar: d ? d.prompt_tokens + d.completion_tokens : 0,
      barText: `${count(d ? d.prompt_tokens + d.completion_tokens : 0)} tokens`,
      line: d ? Number(d.cost_usd) : 0,
      lineText: usd(d ? d.cost_usd : "0"),
    }));
    const latency = series((d) => ({
      bar: d && d.latency_p50_ms !== null ? d.latency_p50_ms : 0,
      barText: `p50 ${ms(d && d.latency_p50_ms)}`,
      line: d && d.latency_p95_ms !== null ? d.latency_p95_ms : 0,
      lineText: `p95 ${ms(d && d.latency_p95_ms)}`,
    }));
    const chart = (title, points, labels) => el("section", { class: "admin-chart" }, el("h3", {}, title), TH.chart(points, labels));

    const top = (id, label, data, name) =>
      table(
        id,
        [label, ["Requests", "num"], ["Tokens", "num"], ["Spend", "num"], ["Errors", "num"], ["p50", "num hide-narrow"]],
        data.map((a) =>
          el(
            "tr",
            {},
            el("td", {}, name(a)),
            el("td", { class: "num" }, count(a.requests)),
            el("td", { class: "num" }, count(a.prompt_tokens + a.completion_tokens)),
            el("td", { class: "num" }, usd(a.cost_usd)),
            el("td", { class: "num" }, pct(a.error_rate)),
            el("td", { class: "num hide-narrow" }, ms(a.latency_p50_ms)),
          ),
        ),
        "No requests in these 14 days.",
      );
    const topModels = [...byModel.data].sort((a, b) => b.requests - a.requests).slice(0, 10);

    fill(panel, 
      heading("Last 14 days", refresh(() => load("dashboard", true))),
      el(
        "div",
        { class: "grid admin-stats" },
        stat(count(requests), "Requests", "stat-requests"),
        stat(count(tokens), "Tokens", "stat-tokens"),
        stat(usd(spend), "Spend", "stat-spend"),
        stat(pct(requests ? errors / requests : 0), `Error rate (${count(errors)} errors)`, "stat-errors"),
        stat(ms(p50), "Latency p50 (daily, weighted)", "stat-p50"),
        stat(ms(p95), "Latency p95 (worst day)", "stat-p95"),
      ),
      el(
        "div",
        { class: "admin-charts" },
        chart("Requests and error rate", traffic, { barLabel: "Requests", lineLabel: "Error rate (%)" }),
        chart("Tokens and spend", volume, { barLabel: "Tokens", lineLabel: "Spend (USD)", lineFormat: (v) => `$${+v.toPrecision(2)}` }),
        chart("Latency", latency, { barLabel: "p50 (ms)", lineLabel: "p95 (ms)" }),
      ),
      el(
        "div",
        { class: "admin-tops" },
        el("section", {}, el("h3", {}, "Top models"), top("top-models", "Model", topModels, (a) => modelName(a.group))),
        el(
          "section",
          {},
          el("h3", {}, "Top users"),
          top("top-users", "User", topUsers, (a) => {
            const name = names.get(a.group);
            return name ? `${name} (#${a.group})` : `#${a.group}`;
          }),
        ),
      ),
    );
  }

  // ---------------------------------------------------------------- channels

  async function channels(panel) {
    const list = await api("GET", "/api/admin/channels");
    const health = await Promise.all(list.data.map((c) => channelHealth(c.id)));
    const editor = el("div", { id: "channel-editor" });
    const rows = list.data.map((c, i) => channelRow(panel, c, health[i], editor));
    const create = channelForm(null, async (body, form) => {
      const created = await run(form, () => api("POST", "/api/admin/channels", body));
      if (!created) return;
      await load("channels", true);
      done(panel, `Channel “${created.name}” added; it serves requests now.`);
    });
    const checks = el("div", { id: "channel-checks", "aria-live": "polite" });
    const testAll = button("Test all", async () => {
      testAll.disabled = true;
      checks.replaceChildren(el("p", { class: "muted" }, "Testing every model of every channel…"));
      try {
        const report = await api("POST", "/api/admin/channels/check");
        checks.replaceChildren(
          el("p", {}, badge(report.ok ? "all OK" : "failures", report.ok ? "ok" : "bad"), ` ${count(report.mappings.length)} model mappings tested.`),
          table(
            "channel-checks-table",
            ["Channel", "Model", "Upstream id", "Status", "Detail"],
            report.mappings.map((m) =>
              el("tr", {}, el("td", {}, m.channel), el("td", {}, el("code", {}, m.model)), el("td", {}, el("code", {}, m.upstream_model)),
                el("td", {}, badge(m.ok ? "OK" : m.status ? `HTTP ${m.status}` : "failed", m.ok ? "ok" : "bad")), el("td", { class: "wrap-anywhere" }, m.error || "—")),
            ),
            "No channel with a key serves a model.",
          ),
        );
      } catch (error) {
        checks.replaceChildren(el("div", { class: "notice error", role: "alert" }, error.message));
      } finally {
        testAll.disabled = false;
      }
    }, { id: "channels-test-all" });
    fill(panel, 
      heading("Channels", testAll, refresh(() => load("channels", true))),
      checks,
      el("p", { class: "muted small" }, "Upstream accounts that serve the models. Keys are write-only: only a mask is shown. Changes apply at once (other gateway instances: at their next reload)."),
      table(
        "channels-table",
        ["Channel", "Key", "Models", ["Priority / weight", "num wrap"], "Health and test", ""],
        rows,
        "No channels yet: add one below.",
      ),
      editor,
      create,
    );
  }

  function channelHealth(id) {
    return api("GET", `/api/admin/channels/${id}/health`).catch(() => null);
  }

  /** The health state as a badge with cooldown, success rate and latency. */
  function healthView(h) {
    if (!h) return el("span", { class: "muted" }, "—");
    const states = { closed: ["ok", "healthy"], half_open: ["warn", "probing"], open: ["bad", "cooling down"], disabled: ["bad", "disabled"], not_serving: ["bad", "not serving"] };
    const [kind, label] = states[h.state] || ["", h.state];
    const details = [];
    if (h.cooldown_remaining_ms) details.push(`${Math.ceil(h.cooldown_remaining_ms / 1000)} s cooldown left`);
    if (h.disabled_reason) details.push(h.disabled_reason);
    if (h.success_rate !== null && h.success_rate !== undefined) details.push(`${pct(h.success_rate)} of ${count(h.successes + h.failures)} ok`);
    if (h.ewma_latency_ms !== null && h.ewma_latency_ms !== undefined) details.push(`~${ms(h.ewma_latency_ms)}`);
    return el("span", { class: "health" }, badge(label, kind), details.length ? el("span", { class: "muted small" }, details.join(" · ")) : null);
  }

  function channelRow(panel, c, health, editor) {
    const enabled = badge(c.enabled ? "enabled" : "disabled", c.enabled ? "ok" : "bad");
    const healthCell = el("div", { class: "channel-health" }, enabled, " ", healthView(health));
    const result = el("div", { class: "test-result small", "aria-live": "polite" });
    const test = button("Test", null, { class: "small ghost test-channel", "aria-label": `Test channel ${c.name}` });
    test.addEventListener("click", async () => {
      test.disabled = true;
      result.replaceChildren(el("span", { class: "muted" }, "Testing…"));
      try {
        const r = await api("POST", `/api/admin/channels/${c.id}/test`, {});
        const detail = [`${count(r.latency_ms)} ms`, r.model, r.status ? `HTTP ${r.status}` : null, r.error].filter(Boolean).join(" · ");
        result.replaceChildren(badge(r.ok ? "OK" : "failed", r.ok ? "ok" : "bad"), " ", el("span", { class: "test-latency" }, detail));
        healthCell.replaceChildren(enabled, " ", healthView(await channelHealth(c.id)));
      } catch (error) {
        result.replaceChildren(badge("error", "bad"), " ", error.message);
      } finally {
        test.disabled = false;
      }
    });
    const edit = button("Edit", () => {
      const form = channelForm(c, async (body) => {
        const saved = await run(form, () => api("PATCH", `/api/admin/channels/${c.id}`, body));
        if (!saved) return;
        await load("channels", true);
        done(panel, `Channel “${saved.name}” saved.`);
      });
      editor.replaceChildren(form);
      form.elements.name.focus();
      form.scrollIntoView({ block: "nearest" });
    }, { "aria-label": `Edit channel ${c.name}` });
    const toggle = button(c.enabled ? "Disable" : "Enable", async () => {
      const saved = await run(panel, () => api("PATCH", `/api/admin/channels/${c.id}`, { enabled: !c.enabled }));
      if (saved) {
        await load("channels", true);
        done(panel, `Channel “${saved.name}” ${saved.enabled ? "enabled" : "disabled"}.`);
      }
    }, { "aria-label": `${c.enabled ? "Disable" : "Enable"} channel ${c.name}` });
    const remove = button("Delete", async () => {
      if (!confirm(`Delete the channel “${c.name}”? Its models stop being served through it.`)) return;
      const gone = await run(panel, () => api("DELETE", `/api/admin/channels/${c.id}`));
      if (gone !== undefined) {
        await load("channels", true);
        done(panel, `Channel “${c.name}” deleted.`);
      }
    }, { class: "small danger", "aria-label": `Delete channel ${c.name}` });
    const key = c.api_key_set ? el("code", {}, c.api_key_masked) : c.api_key_env ? el("span", { class: "small" }, `env ${c.api_key_env}`) : el("span", { class: "muted" }, "none");
    return el(
      "tr",
      { dataset: { channelId: c.id } },
      el(
        "td",
        { class: "channel-name" },
        el("b", {}, c.name),
        " ",
        badge(c.type),
        el("div", { class: "muted small wrap-anywhere" }, c.base_url || "no base URL"),
      ),
      el("td", {}, key),
      el("td", { class: "chips" }, c.models.length ? c.models.map((m) => el("code", {}, m)) : el("span", { class: "muted" }, "none")),
      el("td", { class: "num", title: "Priority / weight" }, `${c.priority} / ${c.weight}`),
      el("td", { class: "channel-state" }, healthCell, el("div", { class: "channel-test" }, test, result)),
      el("td", {}, el("div", { class: "actions" }, edit, toggle, remove)),
    );
  }

  const LIMITS = [
    ["connect_timeout_ms", "Connect timeout (ms)"],
    ["first_token_timeout_ms", "First token timeout (ms)"],
    ["idle_timeout_ms", "Idle timeout (ms)"],
    ["total_timeout_ms", "Total timeout (ms)"],
    ["max_concurrency", "Max concurrent requests"],
  ];

  /** "public = upstream" lines to a model map (and back). */
  function parseModelMap(text) {
    const map = {};
    for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const at = line.indexOf("=");
      if (at < 1) throw new Error(`Model map line “${line}”: write public-name = upstream-id`);
      map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return map;
  }

  /** The create form (`channel` null, id channel-form) or the edit form of `channel`. */
  function channelForm(channel, onSubmit) {
    const editing = Boolean(channel);
    const v = channel || { name: "", type: "openai", base_url: "", models: [], model_map: {}, priority: 0, weight: 1, api_keys_masked: [] };
    const prefix = editing ? `edit-${v.id}-` : "new-channel-";
    const cancel = editing ? button("Cancel", () => form.remove()) : null;
    const keysKept = editing && v.api_key_set ? `keep ${v.api_keys_masked?.length > 1 ? `${v.api_keys_masked.length} keys` : v.api_key_masked}` : "sk-…";
    const fetched = el("div", { class: "muted small", "aria-live": "polite" });
    const fetchModels = editing
      ? button("Fetch models from the upstream", async () => {
        fetchModels.disabled = true;
        fetched.textContent = "Asking the upstream…";
        try {
          const found = await api("GET", `/api/admin/channels/${v.id}/upstream-models`);
          const current = splitList(form.elements.models.value);
          const added = found.data.filter((id) => !current.includes(id) && TH.validModelId(id, MODEL_ID_MAX));
          form.elements.models.value = [...current, ...added].join(", ");
          fetched.textContent = `${count(found.data.length)} models offered by the upstream; ${count(added.length)} added to the list (save to keep them).`;
        } catch (error) {
          fetched.textContent = `The upstream did not list its models: ${error.message}`;
        } finally {
          fetchModels.disabled = false;
        }
      }, { class: "small ghost fetch-models" })
      : null;
    const mapText = Object.entries(v.model_map || {}).map(([k, u]) => `${k} = ${u}`).join("\n");
    const form = el(
      "form",
      { class: "card", id: editing ? "channel-edit-form" : "channel-form" },
      el("h3", {}, editing ? `Edit channel “${v.name}”` : "Add a channel"),
      el(
        "div",
        { class: "fields" },
        field("Name", el("input", { name: "name", id: `${prefix}name`, required: true, maxlength: 64, value: v.name })),
        field("Type", el("select", { name: "type", required: true }, CHANNEL_TYPES.map((t) => el("option", { value: t, selected: t === v.type }, t)))),
        field("Base URL", el("input", { name: "base_url", type: "url", value: v.base_url, placeholder: "https://api.example.com/v1" }), "Not needed for demo"),
        field(
          "API key",
          el("input", { name: "api_key", type: "password", autocomplete: "new-password", placeholder: keysKept }),
          editing ? "Leave empty to keep the stored keys" : null,
        ),
        field("More keys (one per line)", el("textarea", { name: "more_keys", rows: 2, autocomplete: "off", class: "keys" }), "Requests spread over every key"),
        field("Key from environment", el("input", { name: "api_key_env", value: v.api_key_env || "", placeholder: "DEEPSEEK_API_KEY" }), "Used when no key is stored"),
        field("Models (comma-separated)", el("input", { name: "models", value: v.models.join(", "), placeholder: "gpt-4o-mini, gpt-4o" }), fetchModels),
        field("Model map (public = upstream)", el("textarea", { name: "model_map", rows: 2, class: "keys" }, mapText), "Optional, one per line"),
        field("Priority", el("input", { name: "priority", type: "number", step: 1, value: v.priority, class: "narrow" }), "Higher first"),
        field("Weight", el("input", { name: "weight", type: "number", step: 1, min: 0, value: v.weight, class: "narrow" }), "Share within a priority"),
      ),
      fetched,
      el(
        "details",
        { class: "channel-limits", open: LIMITS.some(([name]) => v[name]) },
        el("summary", {}, "Timeouts and concurrency"),
        el("div", { class: "fields" }, LIMITS.map(([name, label]) => field(label, el("input", { name, type: "number", min: 0, step: 1, value: v[name] ?? "", placeholder: "default", class: "narrow" })))),
      ),
      editing && v.api_key_set ? el("label", { class: "check" }, el("input", { type: "checkbox", name: "remove_key" }), "Remove the stored keys") : null,
      el("div", { class: "actions" }, el("button", { type: "submit" }, editing ? "Save channel" : "Add channel"), cancel),
    );
    form.elements.models.addEventListener("input", () => checkModelIds(form.elements.models, splitList(form.elements.models.value)));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      if (!checkModelIds(f.models, splitList(f.models.value))) return f.models.reportValidity();
      let modelMap;
      try {
        modelMap = parseModelMap(f.model_map.value);
      } catch (error) {
        return notice(form, error.message);
      }
      // Limits travel beside the other members; on an edit, an emptied field goes back
      // to the default (0 clears it).
      const limits = {};
      for (const [name] of LIMITS) {
        if (f[name].value !== "") limits[name] = Number(f[name].value);
        else if (editing && v[name]) limits[name] = 0;
      }
      const body = {
        name: f.name.value.trim(),
        type: f.type.value,
        base_url: f.base_url.value.trim(),
        api_key_env: f.api_key_env.value.trim(),
        models: splitList(f.models.value),
        model_map: modelMap,
        priority: Number(f.priority.value || 0),
        weight: Number(f.weight.value || 0),
        ...limits,
      };
      const keys = [f.api_key.value.trim(), ...f.more_keys.value.split("\n").map((k) => k.trim())].filter(Boolean);
      if (keys.length > 1) body.api_keys = keys;
      else if (keys.length === 1) body.api_key = keys[0];
      else if (f.remove_key && f.remove_key.checked) body.api_key = "";
      const submit = form.querySelector('button[type="submit"]');
      submit.disabled = true;
      try {
        await onSubmit(body, form);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  // ---------------------------------------------------------------- models

  async function models(panel) {
    const list = await api("GET", "/api/admin/models");
    const rows = list.data.map((m) => modelRow(panel, m));
    const wrap = table(
      "models-table",
      ["Model", "Provider", ["Context", "num"], ["Input", "num"], ["Output", "num"], ["Cached input", "num"], "Enabled", ""],
      rows,
      "No models yet: add one below.",
      { sortable: true },
    );
    const filter = el("input", { type: "search", id: "models-filter", placeholder: "id or provider" });
    filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      for (const row of wrap.querySelectorAll("tbody tr[data-model-id]")) row.hidden = Boolean(q) && !row.dataset.search.includes(q);
    });
    fill(panel, 
      heading("Models and prices", refresh(() => load("models", true))),
      el("p", { class: "muted small" }, `Prices in USD per 1M tokens. ${count(list.data.length)} models; a model is served once an enabled channel lists it.`),
      el("div", { class: "filters" }, field("Filter models", filter)),
      wrap,
      modelForm(panel),
    );
  }

  function modelBody(m, changes = {}) {
    return {
      id: m.id,
      provider: m.provider,
      context: m.context,
      input_usd_per_mtok: m.input_usd_per_mtok,
      output_usd_per_mtok: m.output_usd_per_mtok,
      cached_input_usd_per_mtok: m.cached_input_usd_per_mtok,
      // Prices this form does not edit travel back unchanged (a PUT replaces them all).
      cache_write_usd_per_mtok: m.cache_write_usd_per_mtok,
      cache_write_1h_usd_per_mtok: m.cache_write_1h_usd_per_mtok,
      explicit_cached_input_usd_per_mtok: m.explicit_cached_input_usd_per_mtok,
      price_tiers: m.price_tiers,
      enabled: m.enabled,
      ...changes,
    };
  }

  function modelRow(panel, m) {
    const row = el("tr", { dataset: { modelId: m.id, search: `${m.id} ${m.provider}`.toLowerCase() } });
    const path = () => `/api/admin/models/${encodeURIComponent(m.id)}`;
    const save = async (body) => {
      const saved = await run(panel, () => api("PUT", path(), body));
      if (!saved) return false;
      Object.assign(m, saved);
      view();
      done(panel, `Model “${m.id}” saved.`);
      return true;
    };

    /** Cache reads, and cache writes when they have their own price. */
    function cachedCell() {
      const reads = m.cached_input_usd_per_mtok ?? null;
      const cell = el("td", { class: reads === null ? "num muted" : "num", dataset: { sort: Number(reads ?? m.input_usd_per_mtok) } }, reads === null ? "= input" : usd(reads));
      if (m.cache_write_usd_per_mtok) cell.append(el("div", { class: "muted small" }, `write ${usd(m.cache_write_usd_per_mtok)}`));
      return cell;
    }

    function view() {
      const toggle = button(m.enabled ? "Disable" : "Enable", () => save(modelBody(m, { enabled: !m.enabled })), {
        disabled: !m.priced,
        title: m.priced ? null : "Set its prices first",
        "aria-label": `${m.enabled ? "Disable" : "Enable"} ${m.id}`,
      });
      const remove = button("Delete", async () => {
        if (!confirm(`Delete the model “${m.id}” from the catalogue?`)) return;
        const gone = await run(panel, () => api("DELETE", path()));
        if (gone !== undefined) {
          row.remove();
          done(panel, `Model “${m.id}” deleted.`);
        }
      }, { class: "small danger", "aria-label": `Delete ${m.id}` });
      const price = (value) => el("td", { class: "num", dataset: { sort: Number(value) } }, usd(value));
      row.replaceChildren(
        el("td", { class: "model-id" }, el("code", {}, m.id), m.priced ? null : [" ", badge("unpriced", "warn")]),
        el("td", {}, m.provider || "—"),
        el("td", { class: "num", dataset: { sort: m.context } }, m.context ? count(m.context) : "—"),
        price(m.input_usd_per_mtok),
        price(m.output_usd_per_mtok),
        cachedCell(),
        el("td", {}, badge(m.enabled ? "on" : "off", m.enabled ? "ok" : "bad")),
        el("td", {}, el("div", { class: "actions" }, button("Edit", edit, { "aria-label": `Edit ${m.id}` }), toggle, remove)),
      );
    }

    /** Every field of the model in a form under its row: what is not edited travels back as it was. */
    function edit() {
      row.nextElementSibling?.classList.contains("model-editor") && row.nextElementSibling.remove();
      const money = (name, label, required, hint) =>
        field(label, el("input", { name, value: m[name] ?? "", inputmode: "decimal", pattern: USD_PATTERN, required, class: "narrow", placeholder: required ? "0.15" : "= default" }), hint);
      const form = el(
        "form",
        { class: "model-edit", id: `model-edit-${m.id}`, "aria-label": `Edit ${m.id}` },
        el("div", { class: "fields" },
          field("Provider", el("input", { name: "provider", value: m.provider, maxlength: 64 })),
          field("Context (tokens)", el("input", { name: "context", type: "number", min: 0, step: 1, value: m.context, class: "narrow" })),
          money("input_usd_per_mtok", "Input $/1M", true),
          money("output_usd_per_mtok", "Output $/1M", true),
          money("cached_input_usd_per_mtok", "Cached input $/1M", false, "Empty: the input price"),
          money("cache_write_usd_per_mtok", "Cache write $/1M", false, "Empty: the input price"),
          money("cache_write_1h_usd_per_mtok", "Cache write 1 h $/1M", false, "Empty: provider rule"),
          money("explicit_cached_input_usd_per_mtok", "Explicit cache hit $/1M", false, "Empty: cached input"),
          el("label", { class: "check" }, el("input", { type: "checkbox", name: "enabled", checked: m.enabled }), "Enabled"),
        ),
        m.price_tiers?.length ? el("p", { class: "muted small" }, `${m.price_tiers.length} price tier(s) are kept as they are (edit them through the API).`) : null,
        el("div", { class: "actions" }, el("button", { type: "submit", class: "small" }, "Save"), button("Cancel", () => close())),
      );
      const editor = el("tr", { class: "model-editor" }, el("td", { colspan: 8 }, form));
      const close = () => {
        editor.remove();
        row.querySelector("button")?.focus();
      };
      form.addEventListener("keydown", (event) => event.key === "Escape" && close());
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const f = form.elements;
        const optional = (name) => f[name].value.trim() || null;
        const saved = await save(
          modelBody(m, {
            provider: f.provider.value.trim(),
            context: Number(f.context.value || 0),
            input_usd_per_mtok: f.input_usd_per_mtok.value.trim(),
            output_usd_per_mtok: f.output_usd_per_mtok.value.trim(),
            cached_input_usd_per_mtok: optional("cached_input_usd_per_mtok"),
            cache_write_usd_per_mtok: optional("cache_write_usd_per_mtok"),
            cache_write_1h_usd_per_mtok: optional("cache_write_1h_usd_per_mtok"),
            explicit_cached_input_usd_per_mtok: optional("explicit_cached_input_usd_per_mtok"),
            enabled: f.enabled.checked,
          }),
        );
        if (saved) close();
      });
      row.after(editor);
      form.elements.input_usd_per_mtok.focus();
    }

    view();
    return row;
  }

  function modelForm(panel) {
    const money = (name, required) => el("input", { name, inputmode: "decimal", pattern: USD_PATTERN, required, placeholder: required ? "0.15" : "= input", class: "narrow" });
    const form = el(
      "form",
      { class: "card", id: "model-form" },
      el("h3", {}, "Add a model"),
      el(
        "div",
        { class: "fields" },
        field("Model id", el("input", { name: "id", required: true, maxlength: MODEL_ID_MAX, placeholder: "gpt-4o-mini" }), MODEL_ID_RULE),
        field("Provider", el("input", { name: "provider", required: true, maxlength: 64, placeholder: "OpenAI" })),
        field("Context (tokens)", el("input", { name: "context", type: "number", min: 0, step: 1, placeholder: "128000", class: "narrow" })),
        field("Input $/1M", money("input_usd_per_mtok", true)),
        field("Output $/1M", money("output_usd_per_mtok", true)),
        field("Cached input $/1M", money("cached_input_usd_per_mtok", false), "Optional"),
      ),
      el("button", { type: "submit" }, "Add model"),
    );
    form.elements.id.addEventListener("input", () => checkModelIds(form.elements.id, [form.elements.id.value.trim()]));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      if (!checkModelIds(f.id, [f.id.value.trim()])) return f.id.reportValidity();
      const body = {
        id: f.id.value.trim(),
        provider: f.provider.value.trim(),
        context: Number(f.context.value || 0),
        input_usd_per_mtok: f.input_usd_per_mtok.value.trim(),
        output_usd_per_mtok: f.output_usd_per_mtok.value.trim(),
        cached_input_usd_per_mtok: f.cached_input_usd_per_mtok.value.trim() || null,
        enabled: true,
      };
      const created = await run(form, () => api("POST", "/api/admin/models", body));
      if (!created) return;
      await load("models", true);
      done(panel, `Model “${created.id}” added. It is served once an enabled channel lists it.`);
    });
    return form;
  }

  // ---------------------------------------------------------------- users

  async function users(panel) {
    const state = { search: "", role: "", status: "", offset: 0 };
    const results = el("div", { id: "users-results" });
    const options = (values) => values.map(([value, label]) => el("option", { value }, label));
    const form = el(
      "form",
      { class: "filters", id: "users-search", role: "search" },
      field("Search by name", el("input", { type: "search", name: "search", maxlength: 64 })),
      field("Role", el("select", { name: "role" }, options([["", "Any"], ["user", "user"], ["admin", "admin"], ["root", "root"]]))),
      field("Status", el("select", { name: "status" }, options([["", "Any"], ["active", "active"], ["disabled", "disabled"], ["deleted", "deleted"]]))),
      el("button", { type: "submit" }, "Search"),
    );
    const show = async () => {
      const page = await api("GET", `/api/admin/users?${query({ search: state.search, role: state.role, status: state.status, limit: PAGE, offset: state.offset })}`);
      fill(results, 
        table(
          "users-table",
          [["ID", "num"], "Name", "Role", "Status", ["Balance", "num"], ["Created", "hide-narrow"], "Balance adjustment", ""],
          page.data.map((u) => userRow(panel, u)),
          "No users match.",
        ),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: page.total, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
      );
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      Object.assign(state, { search: form.elements.search.value.trim(), role: form.elements.role.value, status: form.elements.status.value, offset: 0 });
      guard(panel, show);
    });
    await show();
    fill(panel, heading("Users", refresh(() => guard(panel, show))), form, el("section", { id: "user-page", class: "card user-page", "aria-live": "polite" }), results, newUserForm(panel, show));
  }

  function userRow(panel, u) {
    const roles = ["user", "admin", ...(isRoot || u.role === "root" ? ["root"] : [])];
    const deleted = u.status === "deleted";
    const role = el(
      "select",
      { "aria-label": `Role of ${u.name}`, disabled: deleted || u.system || (u.role === "root" && !isRoot), title: u.system ? "A system account keeps its role" : null },
      roles.map((r) => el("option", { value: r, selected: r === u.role }, r)),
    );
    const balance = el("td", { class: "num" }, usd(u.balance_usd));
    const status = el("td", {});
    const toggle = button("", null);
    const paint = () => {
      status.replaceChildren(badge(u.status, u.status === "active" ? "ok" : "bad"));
      toggle.textContent = u.status === "active" ? "Disable" : "Enable";
      toggle.hidden = deleted || u.system;
      toggle.setAttribute("aria-label", `${toggle.textContent} ${u.name}`);
    };
    paint();
    role.addEventListener("change", async () => {
      const saved = await run(panel, () => api("PATCH", `/api/admin/users/${u.id}`, { role: role.value }));
      if (saved) {
        Object.assign(u, saved);
        done(panel, `${u.name} is now ${u.role}.`);
      } else role.value = u.role;
    });
    toggle.addEventListener("click", async () => {
      const next = u.status === "active" ? "disabled" : "active";
      if (next === "disabled" && !confirm(`Disable ${u.name}? Their keys and sessions stop working.`)) return;
      const saved = await run(panel, () => api("PATCH", `/api/admin/users/${u.id}`, { status: next }));
      if (saved) {
        Object.assign(u, saved);
        paint();
        done(panel, `${u.name} is now ${u.status}.`);
      }
    });
    const adjust = adjustForm(u, () => (balance.textContent = usd(u.balance_usd)));
    const open = button(u.name, () => userPage(panel, u), { class: "link user-open", "aria-label": `Open ${u.name}'s page` });
    return el(
      "tr",
      { dataset: { userId: u.id } },
      el("td", { class: "num" }, String(u.id)),
      el("td", {}, open, u.system ? [" ", badge("system", "warn")] : null),
      el("td", {}, role),
      status,
      balance,
      el("td", { class: "hide-narrow" }, time(u.created_at)),
      el("td", {}, deleted ? el("span", { class: "muted" }, "—") : adjust),
      el("td", {}, toggle),
    );
  }

  /** Credit or debit `u` with a reason, after a confirmation showing the balance before and after. */
  function adjustForm(u, onSaved) {
    const adjust = el(
      "form",
      { class: "adjust" },
      el("input", { name: "amount", inputmode: "decimal", pattern: SIGNED_USD_PATTERN, required: true, placeholder: "±USD", "aria-label": `Amount in USD for ${u.name} (negative debits)`, class: "narrow" }),
      el("input", { name: "reason", required: true, maxlength: 200, placeholder: "Reason", "aria-label": `Reason for adjusting ${u.name}'s balance` }),
      el("button", { type: "submit", class: "small" }, "Apply"),
    );
    adjust.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { amount_usd: adjust.elements.amount.value.trim(), reason: adjust.elements.reason.value.trim() };
      const amount = toNanos(body.amount_usd);
      const after = TH.nanosToUsd(toNanos(u.balance_usd) + amount);
      const verb = amount < 0n ? `Debit ${usd(body.amount_usd.replace("-", ""))} from` : `Credit ${usd(body.amount_usd)} to`;
      if (!confirm(`${verb} ${u.name}?\nBalance ${usd(u.balance_usd)} → ${usd(after)}\nReason: ${body.reason}`)) return;
      const saved = await run(adjust, () => api("POST", `/api/admin/users/${u.id}/balance`, body));
      if (saved) {
        Object.assign(u, saved);
        adjust.reset();
        onSaved();
        done(adjust, `Balance now ${usd(u.balance_usd)}.`);
      }
    });
    return adjust;
  }

  /** One user's page: account, keys (disable/enable), ledger, recent usage, credit, password reset. */
  async function userPage(panel, u) {
    const box = document.getElementById("user-page");
    const [keys, ledger, recent] = await Promise.all([
      api("GET", `/api/admin/users/${u.id}/keys`),
      api("GET", `/api/admin/users/${u.id}/ledger?limit=20`),
      api("GET", `/api/admin/usage?${query({ user_id: u.id, limit: 10 })}`),
    ]);
    const balance = el("b", { id: "user-page-balance" }, usd(u.balance_usd));
    const keyRows = keys.data.map((k) => {
      const active = k.status === "active";
      const toggle = button(active ? "Disable" : "Enable", async () => {
        const saved = await run(box, () => api("PATCH", `/api/admin/keys/${k.id}`, { enabled: !active }));
        if (saved) userPage(panel, u);
      }, { "aria-label": `${active ? "Disable" : "Enable"} key ${k.name || k.prefix}` });
      return el("tr", { dataset: { keyId: k.id } }, el("td", {}, k.name || "—"), el("td", {}, el("code", {}, k.prefix)), el("td", {}, badge(k.status, active ? "ok" : "bad")),
        el("td", { class: "num" }, `${usd(k.spent_usd)}${k.quota_usd ? " / " + usd(k.quota_usd) : ""}`), el("td", {}, toggle));
    });
    const reset = el(
      "form",
      { class: "row", id: "user-password-form" },
      field("New password", el("input", { name: "password", type: "password", minlength: 8, required: true, autocomplete: "new-password" })),
      el("button", { type: "submit", class: "small" }, "Reset password"),
    );
    reset.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!confirm(`Set a new password for ${u.name}? Their sessions end.`)) return;
      const ok = await run(reset, () => api("POST", `/api/admin/users/${u.id}/password`, { password: reset.elements.password.value }));
      if (ok !== undefined) {
        reset.reset();
        done(reset, "Password set; the user's sessions ended.");
      }
    });
    fill(
      box,
      el("div", { class: "admin-bar" }, el("h3", {}, `${u.name} (#${u.id})`), button("Close", () => box.replaceChildren())),
      el("div", { class: "grid admin-stats" },
        el("div", { class: "stat" }, balance, el("span", {}, "Balance")),
        el("div", { class: "stat" }, el("b", {}, u.role), el("span", {}, "Role")),
        el("div", { class: "stat" }, el("b", {}, u.status), el("span", {}, "Status"))),
      u.system ? null : el("div", { class: "filters" }, field("Credit or debit (USD)", adjustForm(u, () => (balance.textContent = usd(u.balance_usd))))),
      el("h4", {}, "API keys"),
      table("user-keys-table", ["Name", "Key", "Status", ["Spent / quota", "num"], ""], keyRows, "No keys."),
      el("h4", {}, "Balance history"),
      table("user-ledger-table", ["Time", "Kind", ["Amount", "num"], "Reason"],
        ledger.data.map((e) => el("tr", {}, el("td", {}, time(e.created_at)), el("td", {}, e.kind), el("td", { class: "num" }, usd(e.amount_usd)), el("td", { class: "wrap-anywhere" }, e.reason || "—"))),
        "No entries."),
      el("h4", {}, "Recent requests"),
      table("user-usage-table", ["Time", "Model", ["Cost", "num"], "Status"],
        recent.data.map((r) => el("tr", {}, el("td", {}, time(r.created_at)), el("td", {}, modelName(r.model)), el("td", { class: "num" }, usd(r.cost_usd)), el("td", {}, badge(String(r.status), r.status < 400 ? "ok" : "bad")))),
        "No requests."),
      u.system ? null : [el("h4", {}, "Password"), reset],
    );
    box.scrollIntoView({ block: "start" });
  }

  function newUserForm(panel, reload) {
    const roles = ["user", "admin", ...(isRoot ? ["root"] : [])];
    const form = el(
      "form",
      { class: "card", id: "user-form" },
      el("h3", {}, "Create a user"),
      el(
        "div",
        { class: "fields" },
        field("User name", el("input", { name: "username", required: true, maxlength: 64, autocomplete: "off" })),
        field("Password", el("input", { name: "password", type: "password", minlength: 8, autocomplete: "new-password" }), "Optional: without one, only keys work"),
        field("Role", el("select", { name: "role" }, roles.map((r) => el("option", { value: r }, r)))),
        field("Opening balance (USD)", el("input", { name: "balance", inputmode: "decimal", pattern: USD_PATTERN, placeholder: "0", class: "narrow" })),
      ),
      el("button", { type: "submit" }, "Create user"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      const body = { username: f.username.value.trim(), role: f.role.value };
      if (f.password.value) body.password = f.password.value;
      if (f.balance.value.trim()) body.balance_usd = f.balance.value.trim();
      const created = await run(form, () => api("POST", "/api/admin/users", body));
      if (!created) return;
      form.reset();
      await guard(panel, reload);
      done(form, `User “${created.name}” created (#${created.id}).`);
    });
    return form;
  }

  // ---------------------------------------------------------------- all keys

  async function allKeys(panel) {
    const state = { search: "", status: "", offset: 0 };
    const results = el("div", { id: "keys-results" });
    const form = el(
      "form",
      { class: "filters", id: "keys-search", role: "search" },
      field("User, key name or prefix", el("input", { type: "search", name: "search", maxlength: 64 })),
      field("Status", el("select", { name: "status" }, [["", "Any"], ["active", "active"], ["disabled", "disabled"]].map(([value, label]) => el("option", { value }, label)))),
      el("button", { type: "submit" }, "Search"),
    );
    const show = async () => {
      const page = await api("GET", `/api/admin/keys?${query({ search: state.search, status: state.status, limit: PAGE, offset: state.offset })}`);
      const rows = page.data.map((k) => {
        const active = k.status === "active";
        const toggle = button(active ? "Disable" : "Enable", async () => {
          if (active && !confirm(`Disable ${k.user_name}'s key “${k.name || k.prefix}”? Programs using it stop working.`)) return;
          const saved = await run(panel, () => api("PATCH", `/api/admin/keys/${k.id}`, { enabled: !active }));
          if (saved) {
            await guard(panel, show);
            done(panel, `Key ${k.prefix} ${saved.status}.`);
          }
        }, { "aria-label": `${active ? "Disable" : "Enable"} key ${k.prefix}` });
        return el(
          "tr",
          { dataset: { keyId: k.id } },
          el("td", {}, `${k.user_name} (#${k.user_id})`),
          el("td", {}, k.name || "—"),
          el("td", {}, el("code", { class: "nowrap" }, k.prefix)),
          el("td", {}, badge(k.status, active ? "ok" : "bad")),
          el("td", { class: "num" }, `${usd(k.spent_usd)}${k.quota_usd ? " / " + usd(k.quota_usd) : ""}`),
          el("td", { class: "hide-narrow" }, time(k.created_at)),
          el("td", {}, toggle),
        );
      });
      fill(results,
        table("all-keys-table", ["User", "Name", "Key", "Status", ["Spent / quota", "num"], ["Created", "hide-narrow"], ""], rows, "No keys match."),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: page.total, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
      );
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      Object.assign(state, { search: form.elements.search.value.trim(), status: form.elements.status.value, offset: 0 });
      guard(panel, show);
    });
    await show();
    fill(panel, heading("API keys", refresh(() => guard(panel, show))), el("p", { class: "muted small" }, "Every user's keys (never the secrets). A disabled key is refused at once."), form, results);
  }

  // ---------------------------------------------------------------- redemption codes

  async function codes(panel) {
    const state = { used: "", offset: 0 };
    const results = el("div", { id: "codes-results" });
    const fresh = el("div", { id: "codes-created" });
    const show = async () => {
      const page = await api("GET", `/api/admin/redemptions?${query({ used: state.used, limit: PAGE, offset: state.offset })}`);
      fill(results, 
        table(
          "codes-table",
          ["Code", ["Amount", "num"], "Batch", ["Created", "hide-narrow"], "Expires", "Redeemed", ""],
          page.data.map((c) => codeRow(panel, c, show)),
          "No codes.",
        ),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: null, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
      );
    };
    const filter = el(
      "select",
      { name: "used", id: "codes-filter" },
      el("option", { value: "" }, "All"),
      el("option", { value: "false" }, "Unused"),
      el("option", { value: "true" }, "Redeemed"),
    );
    filter.addEventListener("change", () => {
      Object.assign(state, { used: filter.value, offset: 0 });
      guard(panel, show);
    });
    const exportAll = button("Export CSV", async () => {
      exportAll.disabled = true;
      try {
        await guard(panel, () => exportCodes(state.used));
      } finally {
        exportAll.disabled = false;
      }
    }, { id: "codes-export" });
    await show();
    fill(panel, 
      heading("Redemption codes", refresh(() => guard(panel, show))),
      codesForm(fresh, show),
      fresh,
      el("div", { class: "filters" }, field("Show", filter), exportAll),
      results,
    );
  }

  function codeRow(panel, c, reload) {
    const remove = c.used_by === null || c.used_by === undefined
      ? button("Delete", async () => {
        if (!confirm(`Delete the unused code ${c.prefix}?`)) return;
        const gone = await run(panel, () => api("DELETE", `/api/admin/redemptions/${c.id}`));
        if (gone !== undefined) {
          await guard(panel, reload);
          done(panel, `Code ${c.prefix} deleted.`);
        }
      }, { class: "small danger", "aria-label": `Delete code ${c.prefix}` })
      : null;
    return el(
      "tr",
      { dataset: { codeId: c.id } },
      el("td", {}, el("code", { class: "nowrap" }, c.prefix)),
      el("td", { class: "num" }, usd(c.amount_usd)),
      el("td", {}, c.batch || "—"),
      el("td", { class: "hide-narrow" }, time(c.created_at)),
      el("td", {}, c.expires_at ? time(c.expires_at) : "never"),
      el("td", {}, c.used_by ? `by #${c.used_by}, ${time(c.used_at)}` : badge("unused", "ok")),
      el("td", {}, remove),
    );
  }

  async function exportCodes(used) {
    const all = [];
    for (let offset = 0; offset < 100000; offset += 500) {
      const page = await api("GET", `/api/admin/redemptions?${query({ used, limit: 500, offset })}`);
      all.push(...page.data);
      if (page.data.length < 500) break;
    }
    const iso = (t) => (t ? new Date(t).toISOString() : "");
    downloadCsv("redemption-codes.csv", [
      ["id", "prefix", "amount_usd", "batch", "created_at", "expires_at", "used_by", "used_at"],
      ...all.map((c) => [c.id, c.prefix, c.amount_usd, c.batch, iso(c.created_at), iso(c.expires_at), c.used_by ?? "", iso(c.used_at)]),
    ]);
  }

  function codesForm(fresh, reload) {
    const form = el(
      "form",
      { class: "card", id: "codes-form" },
      el("h3", {}, "Generate codes"),
      el(
        "div",
        { class: "fields" },
        field("How many", el("input", { name: "count", type: "number", min: 1, max: 1000, step: 1, value: 10, required: true, class: "narrow" })),
        field("Amount each (USD)", el("input", { name: "amount", inputmode: "decimal", pattern: USD_PATTERN, required: true, placeholder: "5", class: "narrow" })),
        field("Batch label", el("input", { name: "batch", maxlength: 64, placeholder: "optional" })),
        field("Expires (optional)", el("input", { name: "expires", type: "date" })),
      ),
      el("button", { type: "submit" }, "Generate"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      const body = { count: Number(f.count.value), amount_usd: f.amount.value.trim(), batch: f.batch.value.trim() };
      if (f.expires.value) body.expires_at = dayStart(f.expires.value, 1) - 1;
      const created = await run(form, () => api("POST", "/api/admin/redemptions", body));
      if (!created) return;
      form.reset();
      fresh.replaceChildren(createdCodes(created.codes));
      await reload();
    });
    return form;
  }

  /** The codes just generated, in full: shown once, with CSV download and copy. */
  function createdCodes(list) {
    const text = list.map((c) => c.code).join("\n");
    const csv = button("Download CSV", () =>
      downloadCsv("new-redemption-codes.csv", [["code", "amount_usd", "batch", "expires_at"], ...list.map((c) => [c.code, c.amount_usd, c.batch, c.expires_at ? new Date(c.expires_at).toISOString() : ""])]),
    );
    return el(
      "div",
      { class: "notice ok", role: "status" },
      el("p", {}, el("b", {}, `${count(list.length)} codes created. `), "Save them now: the full codes are not shown again."),
      el("pre", { class: "codes-list", id: "new-codes" }, el("code", {}, text)),
      el("div", { class: "actions" }, csv, TH.copyButton(text, "Copy all")),
    );
  }

  // ---------------------------------------------------------------- usage logs

  async function usage(panel) {
    const state = { offset: 0, params: {} };
    const cache = { users: new Map(), keys: new Map(), channels: null };
    const catalog = await api("GET", "/api/admin/models").catch(() => ({ data: [] }));
    const statuses = [["", "Any"], ["ok", "Success (< 400)"], ["error", "Errors (≥ 400)"], ...["400", "401", "402", "403", "404", "408", "429", "499", "500", "502", "503", "504"].map((s) => [s, s])];
    const form = el(
      "form",
      { class: "filters", id: "usage-filters" },
      field("User id", el("input", { name: "user_id", type: "number", min: 1, step: 1, class: "narrow" })),
      field("Model", el("input", { name: "model", list: "usage-models", autocomplete: "off" })),
      el("datalist", { id: "usage-models" }, catalog.data.map((m) => el("option", { value: m.id }))),
      field("Status", el("select", { name: "status" }, statuses.map(([value, label]) => el("option", { value }, label)))),
      field("From", el("input", { name: "from", type: "date" })),
      field("To", el("input", { name: "to", type: "date" })),
      el("div", { class: "actions" }, el("button", { type: "submit" }, "Apply"), el("button", { type: "reset", class: "ghost" }, "Reset")),
    );
    const exportLink = el("a", { class: "button ghost small", id: "usage-export", download: "usage.csv" }, "Export CSV");
    const results = el("div", { id: "usage-results" });
    const show = async () => {
      const filters = state.params;
      exportLink.href = `/api/admin/usage/export?${query(filters)}`;
      const page = await api("GET", `/api/admin/usage?${query({ ...filters, limit: PAGE, offset: state.offset })}`);
      const names = await nameBook(page.data, cache);
      fill(results, 
        table(
          "admin-usage-table",
          ["Time", "User and key", "Model and channel", ["Tokens in → out", "num"], ["Cost", "num"], "Status", ["Latency", "num"]],
          page.data.map((r) => usageRow(r, names)),
          "No requests match.",
        ),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: page.total, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
      );
    };
    const apply = () => {
      const f = form.elements;
      state.params = {
        user_id: f.user_id.value,
        model: f.model.value.trim(),
        status: f.status.value,
        from: f.from.value ? dayStart(f.from.value) : "",
        to: f.to.value ? dayStart(f.to.value, 1) : "",
      };
      state.offset = 0;
      return guard(panel, show);
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      apply();
    });
    form.addEventListener("reset", () => setTimeout(apply));
    await show();
    fill(panel, heading("Usage logs", exportLink, refresh(() => guard(panel, show))), form, results);
  }

  /**
   * Names for the ids in usage records (users, their keys, channels), fetched once per
   * id and kept in `cache`; an id that cannot be read shows as its number.
   */
  async function nameBook(records, cache) {
    if (!cache.channels) {
      const list = await api("GET", "/api/admin/channels").catch(() => ({ data: [] }));
      cache.channels = new Map(list.data.map((c) => [c.id, c.name]));
    }
    const users = [...new Set(records.map((r) => r.user_id))].filter((id) => !cache.users.has(id));
    await Promise.all(
      users.map(async (id) => {
        const [user, keys] = await Promise.all([
          api("GET", `/api/admin/users/${id}`).catch(() => null),
          api("GET", `/api/admin/users/${id}/keys`).catch(() => ({ data: [] })),
        ]);
        cache.users.set(id, user ? user.name : null);
        for (const key of keys.data) cache.keys.set(key.id, key.name || key.prefix);
      }),
    );
    return {
      user: (id) => (cache.users.get(id) ? `${cache.users.get(id)} (#${id})` : `#${id}`),
      key: (id) => (id === 0 ? "web chat" : cache.keys.has(id) ? `key “${cache.keys.get(id)}”` : `key ${id}`),
      channel: (id) => (cache.channels.has(id) ? `via ${cache.channels.get(id)}` : `channel ${id}`),
    };
  }

  function usageRow(r, names) {
    const shortId = r.request_id.length > 16 ? `${r.request_id.slice(0, 14)}…` : r.request_id;
    const tokens = el("td", { class: "num" }, `${count(r.prompt_tokens)} → ${count(r.completion_tokens)}`);
    if (r.cached_tokens) tokens.append(el("div", { class: "muted small" }, `${count(r.cached_tokens)} cached`));
    if (r.estimated) tokens.append(el("div", { class: "muted small" }, "estimated"));
    const timing = [r.ttft_ms === null ? null : `TTFT ${ms(r.ttft_ms)}`, r.stream ? "stream" : null].filter(Boolean).join(" · ");
    return el(
      "tr",
      { dataset: { usageId: r.id } },
      el("td", { class: "usage-time" }, time(r.created_at), el("div", { class: "muted small", title: r.request_id }, shortId)),
      el("td", {}, names.user(r.user_id), el("div", { class: "muted small" }, names.key(r.key_id))),
      el("td", {}, modelName(r.model), el("div", { class: "muted small" }, r.channel_id === null ? "no channel" : names.channel(r.channel_id))),
      tokens,
      el("td", { class: "num" }, usd(r.cost_usd)),
      el("td", { class: "usage-status" }, badge(String(r.status), r.status < 400 ? "ok" : "bad"), r.error ? el("div", { class: "muted small" }, r.error) : null),
      el("td", { class: "num" }, ms(r.latency_ms), timing ? el("div", { class: "muted small" }, timing) : null),
    );
  }

  // ---------------------------------------------------------------- audit log (root)

  async function audit(panel) {
    const cursors = [null]; // before_id of each page shown so far; the last is the current page
    const results = el("div", { id: "audit-results" });
    const show = async () => {
      const before = cursors[cursors.length - 1];
      const page = await api("GET", `/api/admin/audit?${query({ limit: PAGE, before_id: before })}`);
      const older = button("Older →", () => {
        cursors.push(page.next_before_id);
        guard(panel, show);
      }, { disabled: page.next_before_id === null });
      const newer = button("← Newer", () => {
        cursors.pop();
        guard(panel, show);
      }, { disabled: cursors.length === 1 });
      fill(results, 
        table("audit-table", ["Time", "Actor", "Action", "Target", "Change"], page.data.map(auditRow), "Nothing recorded yet."),
        el("nav", { class: "pager", "aria-label": "Pages" }, newer, el("span", { class: "muted small" }, `Page ${cursors.length}`), older),
      );
    };
    await show();
    fill(panel, heading("Audit log", refresh(() => ((cursors.length = 1), guard(panel, show)))), el("p", { class: "muted small" }, "Every administrative change, newest first."), results);
  }

  function auditRow(e) {
    const json = (label, value) =>
      value === null || value === undefined ? null : el("div", {}, el("div", { class: "muted small" }, label), el("pre", { class: "json" }, el("code", {}, JSON.stringify(value, null, 2))));
    const change = e.before || e.after
      ? el("details", {}, el("summary", {}, e.before && e.after ? "Before and after" : e.after ? "After" : "Before"), el("div", { class: "json-pair" }, json("Before", e.before), json("After", e.after)))
      : el("span", { class: "muted" }, "—");
    return el(
      "tr",
      { dataset: { auditId: e.id } },
      el("td", {}, time(e.created_at)),
      el("td", {}, e.actor_name || "—", e.actor_id ? el("span", { class: "muted small" }, ` #${e.actor_id}`) : null),
      el("td", {}, el("code", {}, e.action)),
      el("td", { class: "wrap-anywhere" }, e.target),
      el("td", { class: "audit-change" }, change),
    );
  }

  // ---------------------------------------------------------------- catalogue

  /** The shipped catalogue and the price list: search, provider, served filter, attach, import. */
  async function catalogue(panel) {
    const [list, channelList] = await Promise.all([api("GET", "/api/admin/catalogue"), api("GET", "/api/admin/channels")]);
    const channelsById = channelList.data || channelList;
    const providers = [...new Set(list.data.map((m) => m.provider))].sort();
    const search = el("input", { type: "search", id: "catalogue-search", placeholder: "model id" });
    const provider = el("select", { id: "catalogue-provider" }, el("option", { value: "" }, "All providers"), providers.map((p) => el("option", { value: p }, p)));
    const served = el("select", { id: "catalogue-served" }, el("option", { value: "" }, "Served or not"), el("option", { value: "yes" }, "Served"), el("option", { value: "no" }, "Not served"));
    const shown = el("p", { class: "muted small", id: "catalogue-count", role: "status" });
    const rows = list.data.map((m) => catalogueRow(panel, m, channelsById));
    const wrap = table(
      "catalogue-table",
      ["Model", "Provider", ["Context", "num"], ["Input", "num"], ["Output", "num"], "Modalities", "Status", "Serve through"],
      rows,
      "The catalogue is empty.",
      { sortable: true },
    );
    const apply = () => {
      const q = search.value.trim().toLowerCase();
      let n = 0;
      for (const row of wrap.querySelectorAll("tbody tr[data-model-id]")) {
        const visible = (!q || row.dataset.modelId.toLowerCase().includes(q)) && (!provider.value || row.dataset.provider === provider.value) && (!served.value || row.dataset.served === served.value);
        row.hidden = !visible;
        if (visible) n++;
      }
      shown.textContent = `${count(n)} of ${count(list.data.length)} models shown`;
    };
    [search, provider, served].forEach((control) => control.addEventListener("input", apply));
    fill(
      panel,
      heading("Model catalogue", refresh(() => load("catalogue", true))),
      el("p", { class: "muted small" }, "Every model TokenHub knows, with list prices in USD per 1M tokens. A model is served once an enabled channel with a key lists it: pick a channel to attach it (it joins the price list at these prices)."),
      el("div", { class: "filters" }, field("Search", search), field("Provider", provider), field("Status", served)),
      shown,
      wrap,
      importForm(panel),
    );
    apply();
  }

  function catalogueRow(panel, m, channelList) {
    const status = m.served ? badge("served", "ok") : badge(m.channels.length ? "not served (channel has no key or is off)" : "not served", "muted");
    const select = el("select", { "aria-label": `Channel for ${m.id}` }, el("option", { value: "" }, "Channel…"), channelList.filter((c) => !m.channels.includes(c.name)).map((c) => el("option", { value: c.id }, c.name)));
    const attach = button("Attach", async () => {
      if (!select.value) return;
      const result = await run(panel, () => api("POST", "/api/admin/catalogue/attach", { model: m.id, channel_id: Number(select.value) }));
      if (!result) return;
      done(panel, `“${m.id}” attached to ${result.channels[0]}${result.served ? "; it is served now." : "; it is served once that channel has a key and is enabled."}`);
      load("catalogue", true);
    });
    const modalities = `${(m.input_modalities || []).join(", ") || "—"} → ${(m.output_modalities || []).join(", ") || "—"}`;
    return el(
      "tr",
      { dataset: { modelId: m.id, provider: m.provider, served: m.served ? "yes" : "no" } },
      el("td", { class: "wrap-anywhere" }, el("code", {}, m.id), el("div", { class: "muted small", title: m.source || "" }, m.priced ? "in the price list" : "catalogue only")),
      el("td", {}, m.provider),
      el("td", { class: "num", "data-sort": m.context }, m.context ? count(m.context) : "—"),
      el("td", { class: "num", "data-sort": m.input_usd_per_mtok }, usd(m.input_usd_per_mtok, 9)),
      el("td", { class: "num", "data-sort": m.output_usd_per_mtok }, usd(m.output_usd_per_mtok, 9)),
      el("td", { class: "small" }, modalities),
      el("td", {}, status, m.channels.length ? el("div", { class: "muted small" }, m.channels.join(", ")) : null),
      el("td", {}, select, " ", attach),
    );
  }

  /** Imports a price list file: ours, LiteLLM's or OpenRouter's JSON (the API also takes the export's CSV). */
  function importForm(panel) {
    const file = el("input", { type: "file", name: "file", accept: ".json,application/json", required: true });
    const form = el(
      "form",
      { class: "card stack", id: "catalogue-import" },
      el("h3", {}, "Import prices"),
      el("p", { class: "muted small" }, "TokenHub's export or catalog/models.json, LiteLLM's model_prices_and_context_window.json, or OpenRouter's /api/v1/models. New models are added; known ones get the file's prices (price tiers the file does not carry are kept)."),
      field("File", file),
      el("button", { type: "submit" }, "Import"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = file.files[0];
      if (!chosen) return;
      const text = await chosen.text();
      const counts = await run(form, () => api("POST", "/api/admin/models/import", JSON.parse(text)));
      if (!counts) return;
      done(panel, `Imported (${counts.format}): ${count(counts.added)} added, ${count(counts.updated)} updated, ${count(counts.unchanged)} unchanged, ${count(counts.skipped)} skipped.`);
      load("catalogue", true);
    });
    return form;
  }

  // ---------------------------------------------------------------- settings

  async function settings(panel) {
    const current = await api("GET", "/api/admin/settings");
    const form = el(
      "form",
      { class: "card stack", id: "settings-form" },
      field(
        "Sign-up",
        el("select", { name: "signup" }, el("option", { value: "open", selected: current.signup === "open" }, "Open: anyone may create an account"), el("option", { value: "closed", selected: current.signup === "closed" }, "Closed: admins create accounts")),
      ),
      field("Trial credit for new accounts (USD)", el("input", { name: "trial_credit_usd", inputmode: "decimal", pattern: USD_PATTERN, required: true, value: current.trial_credit_usd })),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "anonymous_chat", checked: current.anonymous_chat }), "Anonymous visitors may use the chat demo with free models"),
      field("Anonymous chat requests per minute, per address", el("input", { name: "anonymous_chat_rpm", type: "number", min: 1, max: 600, step: 1, required: true, value: current.anonymous_chat_rpm })),
      field("Support contact on the docs page (empty hides “Need help?”)", el("input", { name: "support_contact", maxlength: 200, placeholder: "WeChat: TokenHub_Support", value: current.support_contact })),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "email_verification", checked: current.email_verification }), "New accounts must confirm their email address before creating keys (needs mail)"),
      el("button", { type: "submit" }, "Save settings"),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const f = form.elements;
      const body = {
        signup: f.signup.value,
        trial_credit_usd: f.trial_credit_usd.value.trim(),
        anonymous_chat: f.anonymous_chat.checked,
        anonymous_chat_rpm: Number(f.anonymous_chat_rpm.value),
        support_contact: f.support_contact.value.trim(),
        email_verification: f.email_verification.checked,
      };
      const saved = await run(form, () => api("PATCH", "/api/admin/settings", body));
      if (saved) done(form, "Settings saved; they apply at once.");
    });
    fill(panel, heading("Settings"), el("p", { class: "muted small" }, "These apply at once on every gateway sharing the database."), form, await mailSettings());
  }

  const MAIL_SOURCES = { admin: "the server below", config: "the configuration's server (accounts.smtp_url)", none: "none: no mail is sent" };

  /** The SMTP server account mail goes through; saved here, it overrides the configuration's. */
  async function mailSettings() {
    const card = el("div", { class: "card stack", id: "mail-settings" });
    const render = (mail) => {
      const saved = mail.saved || { host: "", port: 587, username: "", password_set: false, from: "", tls: "starttls" };
      const tls = el(
        "select",
        { name: "tls" },
        [["starttls", "STARTTLS (port 587)"], ["tls", "TLS (port 465)"], ["none", "None (a local relay)"]].map(([value, label]) => el("option", { value, selected: saved.tls === value }, label)),
      );
      const form = el(
        "form",
        { class: "stack", id: "mail-form" },
        field("SMTP host", el("input", { name: "host", required: true, value: saved.host, placeholder: "smtp.example.com" })),
        field("Port", el("input", { name: "port", type: "number", min: 1, max: 65535, required: true, value: saved.port })),
        field("Security", tls),
        field("User name (empty: no login)", el("input", { name: "username", autocomplete: "off", value: saved.username })),
        field("Password", el("input", { name: "password", type: "password", autocomplete: "new-password", placeholder: saved.password_set ? "set (leave empty to keep)" : "" })),
        field("Sender", el("input", { name: "from", required: true, value: saved.from, placeholder: "TokenHub <noreply@example.com>" })),
        el("button", { type: "submit" }, "Save SMTP settings"),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const f = form.elements;
        const body = { host: f.host.value.trim(), port: Number(f.port.value), username: f.username.value.trim(), from: f.from.value.trim(), tls: f.tls.value };
        if (f.password.value) body.password = f.password.value;
        const next = await run(card, () => api("PUT", "/api/admin/mail", body));
        if (next) {
          render(next);
          done(card, "SMTP settings saved.");
        }
      });
      const revert = mail.saved ? button("Use the configuration's server", async () => {
        const next = await run(card, () => api("DELETE", "/api/admin/mail"));
        if (next) render(next);
      }, { class: "ghost", id: "mail-revert" }) : null;
      const test = el(
        "form",
        { class: "row", id: "mail-test" },
        el("label", {}, "Send a test email to", el("input", { name: "to", type: "email", required: true, autocomplete: "email" })),
        el("button", { type: "submit", class: "ghost" }, "Send test email"),
      );
      test.addEventListener("submit", async (event) => {
        event.preventDefault();
        const sent = await run(card, () => api("POST", "/api/admin/mail/test", { to: test.elements.to.value.trim() }));
        if (sent !== undefined) done(card, "The server took the test mail.");
      });
      fill(
        card,
        el("h3", {}, "Mail (SMTP)"),
        el("p", { class: "muted small", id: "mail-source" }, `Account mail (password resets, address confirmations) goes through ${MAIL_SOURCES[mail.source]}. Saved settings here override the configuration's.`),
        mail.public_url_set ? null : el("p", { class: "small", id: "mail-public-url" }, el("b", {}, "Set public_url (TOKENHUB_PUBLIC_URL) first: links in mail start with it.")),
        form,
        revert,
        test,
      );
    };
    render(await api("GET", "/api/admin/mail"));
    return card;
  }

  // ---------------------------------------------------------------- tabs

  const SECTIONS = [
    ["dashboard", "Dashboard", dashboard],
    ["channels", "Channels", channels],
    ["models", "Models", models],
    ["catalogue", "Catalogue", catalogue],
    ["users", "Users", users],
    ["keys", "Keys", allKeys],
    ["codes", "Codes", codes],
    ["usage", "Usage", usage],
    isRoot ? ["audit", "Audit log", audit] : null,
    ["settings", "Settings", settings],
  ].filter(Boolean);
  const loaded = new Set();

  /** Renders a section into its panel (once, unless `again`). */
  async function load(name, again = false) {
    if (loaded.has(name) && !again) return;
    loaded.add(name);
    const [, , render] = SECTIONS.find(([n]) => n === name);
    const panel = document.getElementById(`admin-panel-${name}`);
    panel.setAttribute("aria-busy", "true");
    const ok = await guard(panel, async () => {
      await render(panel);
      return true;
    });
    panel.removeAttribute("aria-busy");
    if (!ok) loaded.delete(name);
  }

  (async () => {
    try {
      const session = await TH.session();
      if (!session) {
        root.replaceChildren(el("p", {}, "Your session ended. ", el("a", { href: "/token/?next=/admin" }, "Log in again"), "."));
        return;
      }
      const wanted = location.hash.slice(1);
      const initial = SECTIONS.some(([n]) => n === wanted) ? wanted : "dashboard";
      const tablist = el(
        "div",
        { role: "tablist", "aria-label": "Admin sections", class: "admin-tabs" },
        SECTIONS.map(([name, label]) =>
          el("button", { type: "button", role: "tab", id: `admin-tab-${name}`, "aria-controls": `admin-panel-${name}`, "aria-selected": String(name === initial) }, label),
        ),
      );
      const panels = SECTIONS.map(([name]) =>
        el("section", { role: "tabpanel", id: `admin-panel-${name}`, "aria-labelledby": `admin-tab-${name}`, tabindex: 0, hidden: name !== initial }, el("p", { class: "muted" }, "Loading…")),
      );
      root.replaceChildren(el("h1", {}, "Admin"), tablist, ...panels);
      // The URL hash names the open section: links to #users work, and each tab the
      // operator opens is a history entry that Back and Forward return to.
      let following = false;
      const select = TH.tabs(root, (tab) => {
        const name = tab.id.replace("admin-tab-", "");
        if (!following && location.hash.slice(1) !== name) {
          if (location.hash) history.pushState(null, "", `#${name}`);
          else history.replaceState(null, "", `#${name}`);
        }
        load(name);
      });
      const follow = () => {
        const wanted = location.hash.slice(1) || "dashboard";
        const tab = document.getElementById(`admin-tab-${wanted}`);
        if (!tab || tab.getAttribute("aria-selected") === "true") return;
        following = true;
        try {
          select(tab);
        } finally {
          following = false;
        }
      };
      window.addEventListener("hashchange", follow);
      window.addEventListener("popstate", follow);
    } catch (error) {
      notice(root, `The admin panel could not load: ${error.message}`);
    }
  })();
})();
