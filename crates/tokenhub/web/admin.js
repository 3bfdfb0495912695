// The admin panel (/admin): dashboard, channels, models and prices, users, redemption
// codes, usage logs, the audit log (root only) and site settings, all over the
// management API. The server only renders this page for admins; the API checks the
// role again on every call. Values from the API reach the page as text (TH.el).
"use strict";

(() => {
  const { api, el, usd, time, count, notice, guard, t } = TH;
  const root = document.getElementById("admin");
  const isRoot = root.dataset.root === "true";
  const MODEL_ID_MAX = Number(root.dataset.modelIdMax || 200);
  const MODEL_ID_RULE = t("admin.model_id_rule", { max: MODEL_ID_MAX });

  /** Marks `input` invalid unless every id in it passes the server's model id rule. */
  function checkModelIds(input, ids) {
    const bad = ids.find((id) => !TH.validModelId(id, MODEL_ID_MAX));
    input.setCustomValidity(bad === undefined ? "" : t("admin.invalid_model_id", { id: bad, rule: MODEL_ID_RULE }));
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
    return button(t("common.refresh"), action, { class: "small ghost refresh" });
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

  /** Previous/next controls for offset paging; `total` may be unknown (null), or a lower
   *  bound when `capped` (the usage listing counts no further than 10,000: "of 10,000+"). */
  function pager({ offset, limit, shown, total, capped = false, onPage }) {
    const end = offset + shown;
    const more = total === null || total === undefined ? shown === limit : end < total || (capped && shown === limit);
    if (offset === 0 && !more) return null;
    const first = count(shown ? offset + 1 : offset);
    const range = total === null || total === undefined ? t("admin.range", { first, last: count(end) }) : t("admin.range_of", { first, last: count(end), total: `${count(total)}${capped ? "+" : ""}` });
    return el(
      "nav",
      { class: "pager", "aria-label": t("admin.pages") },
      button(t("admin.previous"), () => onPage(Math.max(0, offset - limit)), { disabled: offset === 0 }),
      el("span", { class: "muted small" }, range),
      button(t("admin.next"), () => onPage(offset + limit), { disabled: !more }),
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
    return value === null || value === undefined ? "—" : t("common.ms", { n: count(Math.round(value)) });
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
    return id ? el("code", { class: "nowrap" }, id) : el("span", { class: "muted" }, t("admin.no_model"));
  }

  // ---------------------------------------------------------------- dashboard

  async function dashboard(panel) {
    const days = TH.lastDays(14);
    const from = Date.parse(`${days[0]}T00:00:00Z`);
    // By model and user the API answers the groups with the most requests first (`limit`).
    const summary = (group) => api("GET", `/api/admin/usage/summary?${query({ group_by: group, from, limit: group === "day" ? undefined : 10 })}`);
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
      barText: TH.plural("count.requests", d ? d.requests : 0),
      line: d ? d.error_rate * 100 : 0,
      lineText: t("admin.pct_errors", { pct: pct(d ? d.error_rate : 0) }),
    }));
    const volume = series((d) => ({
      bar: d ? d.prompt_tokens + d.completion_tokens : 0,
      barText: TH.plural("count.tokens", d ? d.prompt_tokens + d.completion_tokens : 0),
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
        [label, [t("admin.requests"), "num"], [t("chart.tokens"), "num"], [t("admin.spend"), "num"], [t("admin.errors"), "num"], ["p50", "num hide-narrow"]],
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
        t("admin.no_requests_14"),
      );
    const topModels = [...byModel.data].sort((a, b) => b.requests - a.requests).slice(0, 10);

    fill(panel, 
      heading(t("admin.last_14_days"), refresh(() => load("dashboard", true))),
      el(
        "div",
        { class: "grid admin-stats" },
        stat(count(requests), t("admin.requests"), "stat-requests"),
        stat(count(tokens), t("chart.tokens"), "stat-tokens"),
        stat(usd(spend), t("admin.spend"), "stat-spend"),
        stat(pct(requests ? errors / requests : 0), t("admin.error_rate_n", { n: count(errors) }), "stat-errors"),
        stat(ms(p50), t("admin.p50_weighted"), "stat-p50"),
        stat(ms(p95), t("admin.p95_worst"), "stat-p95"),
      ),
      el(
        "div",
        { class: "admin-charts" },
        chart(t("admin.requests_and_errors"), traffic, { barLabel: t("admin.requests"), lineLabel: t("admin.error_rate_pct") }),
        chart(t("admin.tokens_and_spend"), volume, { barLabel: t("chart.tokens"), lineLabel: t("chart.spend_usd"), lineFormat: (v) => `$${+v.toPrecision(2)}` }),
        chart(t("console.latency"), latency, { barLabel: t("admin.p50_ms"), lineLabel: t("admin.p95_ms") }),
      ),
      el(
        "div",
        { class: "admin-tops" },
        el("section", {}, el("h3", {}, t("admin.top_models")), top("top-models", t("price.model"), topModels, (a) => modelName(a.group))),
        el(
          "section",
          {},
          el("h3", {}, t("admin.top_users")),
          top("top-users", t("admin.user"), topUsers, (a) => {
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
      done(panel, t("admin.channel_added", { name: created.name }));
    });
    const checks = el("div", { id: "channel-checks", "aria-live": "polite" });
    const testAll = button(t("admin.test_all"), async () => {
      testAll.disabled = true;
      checks.replaceChildren(el("p", { class: "muted" }, t("admin.testing_all")));
      try {
        const report = await api("POST", "/api/admin/channels/check");
        checks.replaceChildren(
          el("p", {}, badge(report.ok ? t("admin.all_ok") : t("admin.failures"), report.ok ? "ok" : "bad"), " ", t("admin.mappings_tested", { n: count(report.mappings.length) })),
          table(
            "channel-checks-table",
            [t("admin.channel"), t("price.model"), t("admin.upstream_id"), t("common.status"), t("admin.detail")],
            report.mappings.map((m) =>
              el("tr", {}, el("td", {}, m.channel), el("td", {}, el("code", {}, m.model)), el("td", {}, el("code", {}, m.upstream_model)),
                el("td", {}, badge(m.ok ? t("admin.ok") : m.status ? `HTTP ${m.status}` : t("admin.failed"), m.ok ? "ok" : "bad")), el("td", { class: "wrap-anywhere" }, m.error || "—")),
            ),
            t("admin.no_channel_serves"),
          ),
        );
      } catch (error) {
        checks.replaceChildren(el("div", { class: "notice error", role: "alert" }, error.message));
      } finally {
        testAll.disabled = false;
      }
    }, { id: "channels-test-all" });
    fill(panel, 
      heading(t("admin.tab_channels"), testAll, refresh(() => load("channels", true))),
      checks,
      el("p", { class: "muted small" }, t("admin.channels_intro")),
      table(
        "channels-table",
        [t("admin.channel"), t("console.key"), t("console.models"), [t("admin.priority_weight"), "num wrap"], t("admin.health_and_test"), ""],
        rows,
        t("admin.no_channels"),
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
    const kinds = { closed: "ok", half_open: "warn", open: "bad", disabled: "bad", not_serving: "bad" };
    const kind = kinds[h.state] || "";
    const details = [];
    if (h.cooldown_remaining_ms) details.push(t("admin.cooldown_left", { n: Math.ceil(h.cooldown_remaining_ms / 1000) }));
    if (h.disabled_reason) details.push(h.disabled_reason);
    if (h.success_rate !== null && h.success_rate !== undefined) details.push(t("admin.success_of", { pct: pct(h.success_rate), n: count(h.successes + h.failures) }));
    if (h.ewma_latency_ms !== null && h.ewma_latency_ms !== undefined) details.push(`~${ms(h.ewma_latency_ms)}`);
    return el("span", { class: "health" }, badge(TH.label("health", h.state), kind), details.length ? el("span", { class: "muted small" }, details.join(" · ")) : null);
  }

  function channelRow(panel, c, health, editor) {
    const enabled = badge(c.enabled ? t("admin.enabled_state") : t("status.disabled"), c.enabled ? "ok" : "bad");
    const healthCell = el("div", { class: "channel-health" }, enabled, " ", healthView(health));
    const result = el("div", { class: "test-result small", "aria-live": "polite" });
    const test = button(t("admin.test"), null, { class: "small ghost test-channel", "aria-label": t("admin.test_channel", { name: c.name }) });
    test.addEventListener("click", async () => {
      test.disabled = true;
      result.replaceChildren(el("span", { class: "muted" }, t("admin.testing")));
      try {
        const r = await api("POST", `/api/admin/channels/${c.id}/test`, {});
        const detail = [t("common.ms", { n: count(r.latency_ms) }), r.model, r.status ? `HTTP ${r.status}` : null, r.error].filter(Boolean).join(" · ");
        result.replaceChildren(badge(r.ok ? t("admin.ok") : t("admin.failed"), r.ok ? "ok" : "bad"), " ", el("span", { class: "test-latency" }, detail));
        healthCell.replaceChildren(enabled, " ", healthView(await channelHealth(c.id)));
      } catch (error) {
        result.replaceChildren(badge(t("admin.error"), "bad"), " ", error.message);
      } finally {
        test.disabled = false;
      }
    });
    const edit = button(t("admin.edit"), () => {
      const form = channelForm(c, async (body) => {
        const saved = await run(form, () => api("PATCH", `/api/admin/channels/${c.id}`, body));
        if (!saved) return;
        await load("channels", true);
        done(panel, t("admin.channel_saved", { name: saved.name }));
      });
      editor.replaceChildren(form);
      form.elements.name.focus();
      form.scrollIntoView({ block: "nearest" });
    }, { "aria-label": t("admin.edit_channel", { name: c.name }) });
    const toggle = button(c.enabled ? t("common.disable") : t("common.enable"), async () => {
      const saved = await run(panel, () => api("PATCH", `/api/admin/channels/${c.id}`, { enabled: !c.enabled }));
      if (saved) {
        await load("channels", true);
        done(panel, t(saved.enabled ? "admin.channel_enabled" : "admin.channel_disabled", { name: saved.name }));
      }
    }, { "aria-label": t(c.enabled ? "admin.disable_channel" : "admin.enable_channel", { name: c.name }) });
    const remove = button(t("common.delete"), async () => {
      if (!confirm(t("admin.confirm_delete_channel", { name: c.name }))) return;
      const gone = await run(panel, () => api("DELETE", `/api/admin/channels/${c.id}`));
      if (gone !== undefined) {
        await load("channels", true);
        done(panel, t("admin.channel_deleted", { name: c.name }));
      }
    }, { class: "small danger", "aria-label": t("admin.delete_channel", { name: c.name }) });
    const key = c.api_key_set ? el("code", {}, c.api_key_masked) : c.api_key_env ? el("span", { class: "small" }, t("admin.key_env", { name: c.api_key_env })) : el("span", { class: "muted" }, t("admin.none"));
    return el(
      "tr",
      { dataset: { channelId: c.id } },
      el(
        "td",
        { class: "channel-name" },
        el("b", {}, c.name),
        " ",
        badge(c.type),
        el("div", { class: "muted small wrap-anywhere" }, c.base_url || t("admin.no_base_url")),
      ),
      el("td", {}, key),
      el("td", { class: "chips" }, c.models.length ? c.models.map((m) => el("code", {}, m)) : el("span", { class: "muted" }, t("admin.none"))),
      el("td", { class: "num", title: t("admin.priority_weight") }, `${c.priority} / ${c.weight}`),
      el("td", { class: "channel-state" }, healthCell, el("div", { class: "channel-test" }, test, result)),
      el("td", {}, el("div", { class: "actions" }, edit, toggle, remove)),
    );
  }

  const LIMITS = [
    ["connect_timeout_ms", t("admin.connect_timeout")],
    ["first_token_timeout_ms", t("admin.first_token_timeout")],
    ["idle_timeout_ms", t("admin.idle_timeout")],
    ["total_timeout_ms", t("admin.total_timeout")],
    ["max_concurrency", t("admin.max_concurrency")],
  ];

  /** "public = upstream" lines to a model map (and back). */
  function parseModelMap(text) {
    const map = {};
    for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
      const at = line.indexOf("=");
      if (at < 1) throw new Error(t("admin.bad_map_line", { line }));
      map[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    return map;
  }

  /** The create form (`channel` null, id channel-form) or the edit form of `channel`. */
  function channelForm(channel, onSubmit) {
    const editing = Boolean(channel);
    const v = channel || { name: "", type: "openai", base_url: "", models: [], model_map: {}, priority: 0, weight: 1, api_keys_masked: [] };
    const prefix = editing ? `edit-${v.id}-` : "new-channel-";
    const cancel = editing ? button(t("admin.cancel"), () => form.remove()) : null;
    const keysKept = editing && v.api_key_set ? t("admin.keep_keys", { keys: v.api_keys_masked?.length > 1 ? t("admin.n_keys", { n: v.api_keys_masked.length }) : v.api_key_masked }) : "sk-…";
    const fetched = el("div", { class: "muted small", "aria-live": "polite" });
    const fetchModels = editing
      ? button(t("admin.fetch_models"), async () => {
        fetchModels.disabled = true;
        fetched.textContent = t("admin.asking_upstream");
        try {
          const found = await api("GET", `/api/admin/channels/${v.id}/upstream-models`);
          const current = splitList(form.elements.models.value);
          const added = found.data.filter((id) => !current.includes(id) && TH.validModelId(id, MODEL_ID_MAX));
          form.elements.models.value = [...current, ...added].join(", ");
          fetched.textContent = t("admin.models_fetched", { offered: count(found.data.length), added: count(added.length) });
        } catch (error) {
          fetched.textContent = t("admin.fetch_failed", { error: error.message });
        } finally {
          fetchModels.disabled = false;
        }
      }, { class: "small ghost fetch-models" })
      : null;
    const mapText = Object.entries(v.model_map || {}).map(([k, u]) => `${k} = ${u}`).join("\n");
    const form = el(
      "form",
      { class: "card", id: editing ? "channel-edit-form" : "channel-form" },
      el("h3", {}, editing ? t("admin.edit_channel_title", { name: v.name }) : t("admin.add_a_channel")),
      el(
        "div",
        { class: "fields" },
        field(t("console.key_name"), el("input", { name: "name", id: `${prefix}name`, required: true, maxlength: 64, value: v.name })),
        field(t("admin.type"), el("select", { name: "type", required: true }, CHANNEL_TYPES.map((type) => el("option", { value: type, selected: type === v.type }, type)))),
        field(t("admin.base_url"), el("input", { name: "base_url", type: "url", value: v.base_url, placeholder: "https://api.example.com/v1" }), t("admin.base_url_hint")),
        field(
          t("admin.api_key"),
          el("input", { name: "api_key", type: "password", autocomplete: "new-password", placeholder: keysKept }),
          editing ? t("admin.keep_stored_keys") : null,
        ),
        field(t("admin.more_keys"), el("textarea", { name: "more_keys", rows: 2, autocomplete: "off", class: "keys" }), t("admin.more_keys_hint")),
        field(t("admin.key_env_field"), el("input", { name: "api_key_env", value: v.api_key_env || "", placeholder: "DEEPSEEK_API_KEY" }), t("admin.key_env_hint")),
        field(t("admin.models_field"), el("input", { name: "models", value: v.models.join(", "), placeholder: "gpt-4o-mini, gpt-4o" }), fetchModels),
        field(t("admin.model_map"), el("textarea", { name: "model_map", rows: 2, class: "keys" }, mapText), t("admin.model_map_hint")),
        field(t("admin.priority"), el("input", { name: "priority", type: "number", step: 1, value: v.priority, class: "narrow" }), t("admin.priority_hint")),
        field(t("admin.weight"), el("input", { name: "weight", type: "number", step: 1, min: 0, value: v.weight, class: "narrow" }), t("admin.weight_hint")),
      ),
      fetched,
      el(
        "details",
        { class: "channel-limits", open: LIMITS.some(([name]) => v[name]) },
        el("summary", {}, t("admin.timeouts")),
        el("div", { class: "fields" }, LIMITS.map(([name, label]) => field(label, el("input", { name, type: "number", min: 0, step: 1, value: v[name] ?? "", placeholder: t("admin.default"), class: "narrow" })))),
      ),
      editing && v.api_key_set ? el("label", { class: "check" }, el("input", { type: "checkbox", name: "remove_key" }), t("admin.remove_keys")) : null,
      el("div", { class: "actions" }, el("button", { type: "submit" }, editing ? t("admin.save_channel") : t("admin.add_channel")), cancel),
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
      [t("price.model"), t("price.provider"), [t("price.context"), "num"], [t("price.input"), "num"], [t("price.output"), "num"], [t("price.cached_input"), "num"], t("admin.enabled"), ""],
      rows,
      t("admin.no_models"),
      { sortable: true },
    );
    const filter = el("input", { type: "search", id: "models-filter", placeholder: t("admin.id_or_provider") });
    filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      for (const row of wrap.querySelectorAll("tbody tr[data-model-id]")) row.hidden = Boolean(q) && !row.dataset.search.includes(q);
    });
    fill(panel, 
      heading(t("admin.models_and_prices"), refresh(() => load("models", true))),
      el("p", { class: "muted small" }, t("admin.models_intro", { models: TH.plural("count.models", list.data.length) })),
      el("div", { class: "filters" }, field(t("admin.filter_models"), filter)),
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
      done(panel, t("admin.model_saved", { id: m.id }));
      return true;
    };

    /** Cache reads, and cache writes when they have their own price. */
    function cachedCell() {
      const reads = m.cached_input_usd_per_mtok ?? null;
      const cell = el("td", { class: reads === null ? "num muted" : "num", dataset: { sort: Number(reads ?? m.input_usd_per_mtok) } }, reads === null ? t("admin.same_as_input") : usd(reads));
      if (m.cache_write_usd_per_mtok) cell.append(el("div", { class: "muted small" }, t("admin.cache_write_price", { price: usd(m.cache_write_usd_per_mtok) })));
      return cell;
    }

    function view() {
      const toggle = button(m.enabled ? t("common.disable") : t("common.enable"), () => save(modelBody(m, { enabled: !m.enabled })), {
        disabled: !m.priced,
        title: m.priced ? null : t("admin.set_prices_first"),
        "aria-label": t(m.enabled ? "admin.disable_x" : "admin.enable_x", { name: m.id }),
      });
      const remove = button(t("common.delete"), async () => {
        if (!confirm(t("admin.confirm_delete_model", { id: m.id }))) return;
        const gone = await run(panel, () => api("DELETE", path()));
        if (gone !== undefined) {
          row.remove();
          done(panel, t("admin.model_deleted", { id: m.id }));
        }
      }, { class: "small danger", "aria-label": t("admin.delete_x", { name: m.id }) });
      const price = (value) => el("td", { class: "num", dataset: { sort: Number(value) } }, usd(value));
      row.replaceChildren(
        el("td", { class: "model-id" }, el("code", {}, m.id), m.priced ? null : [" ", badge(t("admin.unpriced"), "warn")]),
        el("td", {}, m.provider || "—"),
        el("td", { class: "num", dataset: { sort: m.context } }, m.context ? count(m.context) : "—"),
        price(m.input_usd_per_mtok),
        price(m.output_usd_per_mtok),
        cachedCell(),
        el("td", {}, badge(m.enabled ? t("admin.on") : t("admin.off"), m.enabled ? "ok" : "bad")),
        el("td", {}, el("div", { class: "actions" }, button(t("admin.edit"), edit, { "aria-label": t("admin.edit_x", { name: m.id }) }), toggle, remove)),
      );
    }

    /** Every field of the model in a form under its row: what is not edited travels back as it was. */
    function edit() {
      row.nextElementSibling?.classList.contains("model-editor") && row.nextElementSibling.remove();
      const money = (name, label, required, hint) =>
        field(label, el("input", { name, value: m[name] ?? "", inputmode: "decimal", pattern: USD_PATTERN, required, class: "narrow", placeholder: required ? "0.15" : t("admin.same_as_default") }), hint);
      const form = el(
        "form",
        { class: "model-edit", id: `model-edit-${m.id}`, "aria-label": t("admin.edit_x", { name: m.id }) },
        el("div", { class: "fields" },
          field(t("price.provider"), el("input", { name: "provider", value: m.provider, maxlength: 64 })),
          field(t("admin.context_tokens"), el("input", { name: "context", type: "number", min: 0, step: 1, value: m.context, class: "narrow" })),
          money("input_usd_per_mtok", t("admin.input_per_m"), true),
          money("output_usd_per_mtok", t("admin.output_per_m"), true),
          money("cached_input_usd_per_mtok", t("admin.cached_per_m"), false, t("admin.empty_input_price")),
          money("cache_write_usd_per_mtok", t("admin.cache_write_per_m"), false, t("admin.empty_input_price")),
          money("cache_write_1h_usd_per_mtok", t("admin.cache_write_1h_per_m"), false, t("admin.empty_provider_rule")),
          money("explicit_cached_input_usd_per_mtok", t("admin.explicit_cache_per_m"), false, t("admin.empty_cached_input")),
          el("label", { class: "check" }, el("input", { type: "checkbox", name: "enabled", checked: m.enabled }), t("admin.enabled")),
        ),
        m.price_tiers?.length ? el("p", { class: "muted small" }, t("admin.tiers_kept", { n: m.price_tiers.length })) : null,
        el("div", { class: "actions" }, el("button", { type: "submit", class: "small" }, t("admin.save")), button(t("admin.cancel"), () => close())),
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
    const money = (name, required) => el("input", { name, inputmode: "decimal", pattern: USD_PATTERN, required, placeholder: required ? "0.15" : t("admin.same_as_input"), class: "narrow" });
    const form = el(
      "form",
      { class: "card", id: "model-form" },
      el("h3", {}, t("admin.add_a_model")),
      el(
        "div",
        { class: "fields" },
        field(t("admin.model_id"), el("input", { name: "id", required: true, maxlength: MODEL_ID_MAX, placeholder: "gpt-4o-mini" }), MODEL_ID_RULE),
        field(t("price.provider"), el("input", { name: "provider", required: true, maxlength: 64, placeholder: "OpenAI" })),
        field(t("admin.context_tokens"), el("input", { name: "context", type: "number", min: 0, step: 1, placeholder: "128000", class: "narrow" })),
        field(t("admin.input_per_m"), money("input_usd_per_mtok", true)),
        field(t("admin.output_per_m"), money("output_usd_per_mtok", true)),
        field(t("admin.cached_per_m"), money("cached_input_usd_per_mtok", false), t("admin.optional")),
      ),
      el("button", { type: "submit" }, t("admin.add_model")),
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
      done(panel, t("admin.model_added", { id: created.id }));
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
      field(t("admin.search_by_name"), el("input", { type: "search", name: "search", maxlength: 64 })),
      field(t("admin.role"), el("select", { name: "role" }, options([["", t("admin.any")], ...["user", "admin", "root"].map((r) => [r, TH.label("role", r)])]))),
      field(t("common.status"), el("select", { name: "status" }, options([["", t("admin.any")], ...["active", "disabled", "deleted"].map((s) => [s, TH.label("status", s)])]))),
      el("button", { type: "submit" }, t("price.search")),
    );
    const show = async () => {
      const page = await api("GET", `/api/admin/users?${query({ search: state.search, role: state.role, status: state.status, limit: PAGE, offset: state.offset })}`);
      fill(results, 
        table(
          "users-table",
          [["ID", "num"], t("console.key_name"), t("admin.role"), t("common.status"), [t("console.balance"), "num"], [t("admin.created"), "hide-narrow"], t("admin.balance_adjustment"), ""],
          page.data.map((u) => userRow(panel, u)),
          t("admin.no_users"),
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
    fill(panel, heading(t("admin.tab_users"), refresh(() => guard(panel, show))), form, el("section", { id: "user-page", class: "card user-page", "aria-live": "polite" }), results, newUserForm(panel, show));
  }

  function userRow(panel, u) {
    const roles = ["user", "admin", ...(isRoot || u.role === "root" ? ["root"] : [])];
    const deleted = u.status === "deleted";
    const role = el(
      "select",
      { "aria-label": t("admin.role_of", { name: u.name }), disabled: deleted || u.system || (u.role === "root" && !isRoot), title: u.system ? t("admin.system_keeps_role") : null },
      roles.map((r) => el("option", { value: r, selected: r === u.role }, TH.label("role", r))),
    );
    const balance = el("td", { class: "num" }, usd(u.balance_usd));
    const status = el("td", {});
    const toggle = button("", null);
    const paint = () => {
      status.replaceChildren(badge(TH.label("status", u.status), u.status === "active" ? "ok" : "bad"));
      toggle.textContent = u.status === "active" ? t("common.disable") : t("common.enable");
      toggle.hidden = deleted || u.system;
      toggle.setAttribute("aria-label", t(u.status === "active" ? "admin.disable_x" : "admin.enable_x", { name: u.name }));
    };
    paint();
    role.addEventListener("change", async () => {
      const saved = await run(panel, () => api("PATCH", `/api/admin/users/${u.id}`, { role: role.value }));
      if (saved) {
        Object.assign(u, saved);
        done(panel, t("admin.user_now", { name: u.name, state: TH.label("role", u.role) }));
      } else role.value = u.role;
    });
    toggle.addEventListener("click", async () => {
      const next = u.status === "active" ? "disabled" : "active";
      if (next === "disabled" && !confirm(t("admin.confirm_disable_user", { name: u.name }))) return;
      const saved = await run(panel, () => api("PATCH", `/api/admin/users/${u.id}`, { status: next }));
      if (saved) {
        Object.assign(u, saved);
        paint();
        done(panel, t("admin.user_now", { name: u.name, state: TH.label("status", u.status) }));
      }
    });
    const adjust = adjustForm(u, () => (balance.textContent = usd(u.balance_usd)));
    const open = button(u.name, () => userPage(panel, u), { class: "link user-open", "aria-label": t("admin.open_user_page", { name: u.name }) });
    return el(
      "tr",
      { dataset: { userId: u.id } },
      el("td", { class: "num" }, String(u.id)),
      el("td", {}, open, u.system ? [" ", badge(t("admin.system"), "warn")] : null),
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
      el("input", { name: "amount", inputmode: "decimal", pattern: SIGNED_USD_PATTERN, required: true, placeholder: t("admin.plus_minus_usd"), "aria-label": t("admin.amount_for", { name: u.name }), class: "narrow" }),
      el("input", { name: "reason", required: true, maxlength: 200, placeholder: t("admin.reason"), "aria-label": t("admin.reason_for", { name: u.name }) }),
      el("button", { type: "submit", class: "small" }, t("admin.apply")),
    );
    adjust.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { amount_usd: adjust.elements.amount.value.trim(), reason: adjust.elements.reason.value.trim() };
      const amount = toNanos(body.amount_usd);
      const after = TH.nanosToUsd(toNanos(u.balance_usd) + amount);
      const question = amount < 0n
        ? t("admin.confirm_debit", { amount: usd(body.amount_usd.replace("-", "")), name: u.name })
        : t("admin.confirm_credit", { amount: usd(body.amount_usd), name: u.name });
      const change = t("admin.confirm_balance_change", { before: usd(u.balance_usd), after: usd(after), reason: body.reason });
      if (!confirm(`${question}\n${change}`)) return;
      const saved = await run(adjust, () => api("POST", `/api/admin/users/${u.id}/balance`, body));
      if (saved) {
        Object.assign(u, saved);
        adjust.reset();
        onSaved();
        done(adjust, t("admin.balance_now", { amount: usd(u.balance_usd) }));
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
      const toggle = button(active ? t("common.disable") : t("common.enable"), async () => {
        const saved = await run(box, () => api("PATCH", `/api/admin/keys/${k.id}`, { enabled: !active }));
        if (saved) userPage(panel, u);
      }, { "aria-label": t(active ? "admin.disable_key" : "admin.enable_key", { name: k.name || k.prefix }) });
      return el("tr", { dataset: { keyId: k.id } }, el("td", {}, k.name || "—"), el("td", {}, el("code", {}, k.prefix)), el("td", {}, badge(TH.label("status", k.status), active ? "ok" : "bad")),
        el("td", { class: "num" }, `${usd(k.spent_usd)}${k.quota_usd ? " / " + usd(k.quota_usd) : ""}`), el("td", {}, toggle));
    });
    const reset = el(
      "form",
      { class: "row", id: "user-password-form" },
      field(t("console.new_password"), el("input", { name: "password", type: "password", minlength: 8, required: true, autocomplete: "new-password" })),
      el("button", { type: "submit", class: "small" }, t("admin.reset_password")),
    );
    reset.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!confirm(t("admin.confirm_reset_password", { name: u.name }))) return;
      const ok = await run(reset, () => api("POST", `/api/admin/users/${u.id}/password`, { password: reset.elements.password.value }));
      if (ok !== undefined) {
        reset.reset();
        done(reset, t("admin.password_set"));
      }
    });
    fill(
      box,
      el("div", { class: "admin-bar" }, el("h3", {}, `${u.name} (#${u.id})`), button(t("admin.close"), () => box.replaceChildren())),
      el("div", { class: "grid admin-stats" },
        el("div", { class: "stat" }, balance, el("span", {}, t("console.balance"))),
        el("div", { class: "stat" }, el("b", {}, TH.label("role", u.role)), el("span", {}, t("admin.role"))),
        el("div", { class: "stat" }, el("b", {}, TH.label("status", u.status)), el("span", {}, t("common.status")))),
      u.system ? null : el("div", { class: "filters" }, field(t("admin.credit_or_debit"), adjustForm(u, () => (balance.textContent = usd(u.balance_usd))))),
      el("h4", {}, t("console.api_keys")),
      table("user-keys-table", [t("console.key_name"), t("console.key"), t("common.status"), [t("console.spent_quota"), "num"], ""], keyRows, t("admin.no_keys")),
      el("h4", {}, t("admin.balance_history")),
      table("user-ledger-table", [t("common.time"), t("admin.kind"), [t("admin.amount"), "num"], t("admin.reason")],
        ledger.data.map((e) => el("tr", {}, el("td", {}, time(e.created_at)), el("td", {}, TH.label("kind", e.kind)), el("td", { class: "num" }, usd(e.amount_usd)), el("td", { class: "wrap-anywhere" }, e.reason || "—"))),
        t("admin.no_entries")),
      el("h4", {}, t("console.recent_requests")),
      table("user-usage-table", [t("common.time"), t("price.model"), [t("console.cost"), "num"], t("common.status")],
        recent.data.map((r) => el("tr", {}, el("td", {}, time(r.created_at)), el("td", {}, modelName(r.model)), el("td", { class: "num" }, usd(r.cost_usd)), el("td", {}, badge(String(r.status), r.status < 400 ? "ok" : "bad")))),
        t("admin.no_requests")),
      u.system ? null : [el("h4", {}, t("console.password")), reset],
    );
    box.scrollIntoView({ block: "start" });
  }

  function newUserForm(panel, reload) {
    const roles = ["user", "admin", ...(isRoot ? ["root"] : [])];
    const form = el(
      "form",
      { class: "card", id: "user-form" },
      el("h3", {}, t("admin.create_a_user")),
      el(
        "div",
        { class: "fields" },
        field(t("admin.user_name"), el("input", { name: "username", required: true, maxlength: 64, autocomplete: "off" })),
        field(t("console.password"), el("input", { name: "password", type: "password", minlength: 8, autocomplete: "new-password" }), t("admin.password_optional")),
        field(t("admin.role"), el("select", { name: "role" }, roles.map((r) => el("option", { value: r }, TH.label("role", r))))),
        field(t("admin.opening_balance"), el("input", { name: "balance", inputmode: "decimal", pattern: USD_PATTERN, placeholder: "0", class: "narrow" })),
      ),
      el("button", { type: "submit" }, t("admin.create_user")),
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
      done(form, t("admin.user_created", { name: created.name, id: created.id }));
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
      field(t("admin.user_key_prefix"), el("input", { type: "search", name: "search", maxlength: 64 })),
      field(t("common.status"), el("select", { name: "status" }, [["", t("admin.any")], ["active", TH.label("status", "active")], ["disabled", TH.label("status", "disabled")]].map(([value, text]) => el("option", { value }, text)))),
      el("button", { type: "submit" }, t("price.search")),
    );
    const show = async () => {
      const page = await api("GET", `/api/admin/keys?${query({ search: state.search, status: state.status, limit: PAGE, offset: state.offset })}`);
      const rows = page.data.map((k) => {
        const active = k.status === "active";
        const toggle = button(active ? t("common.disable") : t("common.enable"), async () => {
          if (active && !confirm(t("admin.confirm_disable_key", { user: k.user_name, name: k.name || k.prefix }))) return;
          const saved = await run(panel, () => api("PATCH", `/api/admin/keys/${k.id}`, { enabled: !active }));
          if (saved) {
            await guard(panel, show);
            done(panel, t("admin.key_now", { prefix: k.prefix, state: TH.label("status", saved.status) }));
          }
        }, { "aria-label": t(active ? "admin.disable_key" : "admin.enable_key", { name: k.prefix }) });
        return el(
          "tr",
          { dataset: { keyId: k.id } },
          el("td", {}, `${k.user_name} (#${k.user_id})`),
          el("td", {}, k.name || "—"),
          el("td", {}, el("code", { class: "nowrap" }, k.prefix)),
          el("td", {}, badge(TH.label("status", k.status), active ? "ok" : "bad")),
          el("td", { class: "num" }, `${usd(k.spent_usd)}${k.quota_usd ? " / " + usd(k.quota_usd) : ""}`),
          el("td", { class: "hide-narrow" }, time(k.created_at)),
          el("td", {}, toggle),
        );
      });
      fill(results,
        table("all-keys-table", [t("admin.user"), t("console.key_name"), t("console.key"), t("common.status"), [t("console.spent_quota"), "num"], [t("admin.created"), "hide-narrow"], ""], rows, t("admin.no_keys_match")),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: page.total, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
      );
    };
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      Object.assign(state, { search: form.elements.search.value.trim(), status: form.elements.status.value, offset: 0 });
      guard(panel, show);
    });
    await show();
    fill(panel, heading(t("console.api_keys"), refresh(() => guard(panel, show))), el("p", { class: "muted small" }, t("admin.keys_intro")), form, results);
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
          [t("admin.code"), [t("admin.amount"), "num"], t("admin.batch"), [t("admin.created"), "hide-narrow"], t("console.expires"), t("admin.redeemed"), ""],
          page.data.map((c) => codeRow(panel, c, show)),
          t("admin.no_codes"),
        ),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: null, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
      );
    };
    const filter = el(
      "select",
      { name: "used", id: "codes-filter" },
      el("option", { value: "" }, t("admin.all")),
      el("option", { value: "false" }, t("admin.unused_option")),
      el("option", { value: "true" }, t("admin.redeemed")),
    );
    filter.addEventListener("change", () => {
      Object.assign(state, { used: filter.value, offset: 0 });
      guard(panel, show);
    });
    const exportAll = button(t("admin.export_csv"), async () => {
      exportAll.disabled = true;
      try {
        await guard(panel, () => exportCodes(state.used));
      } finally {
        exportAll.disabled = false;
      }
    }, { id: "codes-export" });
    await show();
    fill(panel, 
      heading(t("admin.redemption_codes"), refresh(() => guard(panel, show))),
      codesForm(fresh, show),
      fresh,
      el("div", { class: "filters" }, field(t("admin.show"), filter), exportAll),
      results,
    );
  }

  function codeRow(panel, c, reload) {
    const remove = c.used_by === null || c.used_by === undefined
      ? button(t("common.delete"), async () => {
        if (!confirm(t("admin.confirm_delete_code", { prefix: c.prefix }))) return;
        const gone = await run(panel, () => api("DELETE", `/api/admin/redemptions/${c.id}`));
        if (gone !== undefined) {
          await guard(panel, reload);
          done(panel, t("admin.code_deleted", { prefix: c.prefix }));
        }
      }, { class: "small danger", "aria-label": t("admin.delete_code", { prefix: c.prefix }) })
      : null;
    return el(
      "tr",
      { dataset: { codeId: c.id } },
      el("td", {}, el("code", { class: "nowrap" }, c.prefix)),
      el("td", { class: "num" }, usd(c.amount_usd)),
      el("td", {}, c.batch || "—"),
      el("td", { class: "hide-narrow" }, time(c.created_at)),
      el("td", {}, c.expires_at ? time(c.expires_at) : t("console.never")),
      el("td", {}, c.used_by ? t("admin.redeemed_by", { user: c.used_by, time: time(c.used_at) }) : badge(t("admin.unused"), "ok")),
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
      el("h3", {}, t("admin.generate_codes")),
      el(
        "div",
        { class: "fields" },
        field(t("admin.how_many"), el("input", { name: "count", type: "number", min: 1, max: 1000, step: 1, value: 10, required: true, class: "narrow" })),
        field(t("admin.amount_each"), el("input", { name: "amount", inputmode: "decimal", pattern: USD_PATTERN, required: true, placeholder: "5", class: "narrow" })),
        field(t("admin.batch_label"), el("input", { name: "batch", maxlength: 64, placeholder: t("admin.optional_lower") })),
        field(t("console.expires_optional"), el("input", { name: "expires", type: "date" })),
      ),
      el("button", { type: "submit" }, t("admin.generate")),
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
    const csv = button(t("admin.download_csv"), () =>
      downloadCsv("new-redemption-codes.csv", [["code", "amount_usd", "batch", "expires_at"], ...list.map((c) => [c.code, c.amount_usd, c.batch, c.expires_at ? new Date(c.expires_at).toISOString() : ""])]),
    );
    return el(
      "div",
      { class: "notice ok", role: "status" },
      el("p", {}, el("b", {}, TH.plural("admin.codes_created", list.length)), " ", t("admin.save_codes_now")),
      el("pre", { class: "codes-list", id: "new-codes" }, el("code", {}, text)),
      el("div", { class: "actions" }, csv, TH.copyButton(text, t("admin.copy_all"))),
    );
  }

  // ---------------------------------------------------------------- usage logs

  async function usage(panel) {
    const state = { offset: 0, params: {} };
    const cache = { users: new Map(), keys: new Map(), channels: null };
    const catalog = await api("GET", "/api/admin/models").catch(() => ({ data: [] }));
    const statuses = [["", t("admin.any")], ["ok", t("admin.success_lt_400")], ["error", t("admin.errors_ge_400")], ...["400", "401", "402", "403", "404", "408", "429", "499", "500", "502", "503", "504"].map((s) => [s, s])];
    const form = el(
      "form",
      { class: "filters", id: "usage-filters" },
      field(t("admin.user_id"), el("input", { name: "user_id", type: "number", min: 1, step: 1, class: "narrow" })),
      field(t("price.model"), el("input", { name: "model", list: "usage-models", autocomplete: "off" })),
      el("datalist", { id: "usage-models" }, catalog.data.map((m) => el("option", { value: m.id }))),
      field(t("common.status"), el("select", { name: "status" }, statuses.map(([value, text]) => el("option", { value }, text)))),
      field(t("admin.from"), el("input", { name: "from", type: "date" })),
      field(t("admin.to"), el("input", { name: "to", type: "date" })),
      el("div", { class: "actions" }, el("button", { type: "submit" }, t("admin.apply")), el("button", { type: "reset", class: "ghost" }, t("admin.reset"))),
    );
    const exportLink = el("a", { class: "button ghost small", id: "usage-export", download: "usage.csv" }, t("admin.export_csv"));
    const results = el("div", { id: "usage-results" });
    const show = async () => {
      const filters = state.params;
      exportLink.href = `/api/admin/usage/export?${query(filters)}`;
      const page = await api("GET", `/api/admin/usage?${query({ ...filters, limit: PAGE, offset: state.offset })}`);
      const names = await nameBook(page.data, cache);
      fill(results, 
        table(
          "admin-usage-table",
          [t("common.time"), t("admin.user_and_key"), t("admin.model_and_channel"), [t("admin.tokens_in_out"), "num"], [t("console.cost"), "num"], t("common.status"), [t("console.latency"), "num"]],
          page.data.map((r) => usageRow(r, names)),
          t("admin.no_requests_match"),
        ),
        pager({ offset: state.offset, limit: PAGE, shown: page.data.length, total: page.total, capped: page.total_capped, onPage: (offset) => ((state.offset = offset), guard(panel, show)) }),
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
    fill(panel, heading(t("admin.usage_logs"), exportLink, refresh(() => guard(panel, show))), form, results);
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
      key: (id) => (id === 0 ? t("admin.web_chat") : cache.keys.has(id) ? t("admin.key_named", { name: cache.keys.get(id) }) : t("admin.key_id", { id })),
      channel: (id) => (cache.channels.has(id) ? t("admin.via_channel", { name: cache.channels.get(id) }) : t("admin.channel_id", { id })),
    };
  }

  function usageRow(r, names) {
    const shortId = r.request_id.length > 16 ? `${r.request_id.slice(0, 14)}…` : r.request_id;
    const tokens = el("td", { class: "num" }, `${count(r.prompt_tokens)} → ${count(r.completion_tokens)}`);
    if (r.cached_tokens) tokens.append(el("div", { class: "muted small" }, t("admin.n_cached", { n: count(r.cached_tokens) })));
    if (r.estimated) tokens.append(el("div", { class: "muted small" }, t("admin.estimated")));
    const timing = [r.ttft_ms === null ? null : `TTFT ${ms(r.ttft_ms)}`, r.stream ? t("admin.stream") : null].filter(Boolean).join(" · ");
    return el(
      "tr",
      { dataset: { usageId: r.id } },
      el("td", { class: "usage-time" }, time(r.created_at), el("div", { class: "muted small", title: r.request_id }, shortId)),
      el("td", {}, names.user(r.user_id), el("div", { class: "muted small" }, names.key(r.key_id))),
      el("td", {}, modelName(r.model), el("div", { class: "muted small" }, r.channel_id === null ? t("admin.no_channel") : names.channel(r.channel_id))),
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
      const older = button(t("admin.older"), () => {
        cursors.push(page.next_before_id);
        guard(panel, show);
      }, { disabled: page.next_before_id === null });
      const newer = button(t("admin.newer"), () => {
        cursors.pop();
        guard(panel, show);
      }, { disabled: cursors.length === 1 });
      fill(results, 
        table("audit-table", [t("common.time"), t("admin.actor"), t("admin.action"), t("admin.target"), t("admin.change")], page.data.map(auditRow), t("admin.nothing_recorded")),
        el("nav", { class: "pager", "aria-label": t("admin.pages") }, newer, el("span", { class: "muted small" }, t("admin.page_n", { n: cursors.length })), older),
      );
    };
    await show();
    fill(panel, heading(t("admin.tab_audit"), refresh(() => ((cursors.length = 1), guard(panel, show)))), el("p", { class: "muted small" }, t("admin.audit_intro")), results);
  }

  function auditRow(e) {
    const json = (label, value) =>
      value === null || value === undefined ? null : el("div", {}, el("div", { class: "muted small" }, label), el("pre", { class: "json" }, el("code", {}, JSON.stringify(value, null, 2))));
    const change = e.before || e.after
      ? el("details", {}, el("summary", {}, e.before && e.after ? t("admin.before_and_after") : e.after ? t("admin.after") : t("admin.before")), el("div", { class: "json-pair" }, json(t("admin.before"), e.before), json(t("admin.after"), e.after)))
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
    const search = el("input", { type: "search", id: "catalogue-search", placeholder: t("admin.model_id_lower") });
    const provider = el("select", { id: "catalogue-provider" }, el("option", { value: "" }, t("price.all_providers")), providers.map((p) => el("option", { value: p }, p)));
    const served = el("select", { id: "catalogue-served" }, el("option", { value: "" }, t("admin.served_or_not")), el("option", { value: "yes" }, t("admin.served_option")), el("option", { value: "no" }, t("admin.not_served_option")));
    const shown = el("p", { class: "muted small", id: "catalogue-count", role: "status" });
    const rows = list.data.map((m) => catalogueRow(panel, m, channelsById));
    const wrap = table(
      "catalogue-table",
      [t("price.model"), t("price.provider"), [t("price.context"), "num"], [t("price.input"), "num"], [t("price.output"), "num"], t("admin.modalities"), t("common.status"), t("admin.serve_through")],
      rows,
      t("admin.catalogue_empty"),
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
      shown.textContent = t("admin.models_shown", { n: count(n), total: count(list.data.length) });
    };
    [search, provider, served].forEach((control) => control.addEventListener("input", apply));
    fill(
      panel,
      heading(t("admin.model_catalogue"), refresh(() => load("catalogue", true))),
      el("p", { class: "muted small" }, t("admin.catalogue_intro")),
      el("div", { class: "filters" }, field(t("price.search"), search), field(t("price.provider"), provider), field(t("common.status"), served)),
      shown,
      wrap,
      importForm(panel),
    );
    apply();
  }

  function catalogueRow(panel, m, channelList) {
    const status = m.served ? badge(t("admin.served"), "ok") : badge(m.channels.length ? t("admin.not_served_channel") : t("admin.not_served"), "muted");
    const select = el("select", { "aria-label": t("admin.channel_for", { id: m.id }) }, el("option", { value: "" }, t("admin.channel_pick")), channelList.filter((c) => !m.channels.includes(c.name)).map((c) => el("option", { value: c.id }, c.name)));
    const attach = button(t("admin.attach"), async () => {
      if (!select.value) return;
      const result = await run(panel, () => api("POST", "/api/admin/catalogue/attach", { model: m.id, channel_id: Number(select.value) }));
      if (!result) return;
      done(panel, t(result.served ? "admin.attached_served" : "admin.attached_later", { id: m.id, channel: result.channels[0] }));
      load("catalogue", true);
    });
    const modalities = `${(m.input_modalities || []).join(", ") || "—"} → ${(m.output_modalities || []).join(", ") || "—"}`;
    return el(
      "tr",
      { dataset: { modelId: m.id, provider: m.provider, served: m.served ? "yes" : "no" } },
      el("td", { class: "wrap-anywhere" }, el("code", {}, m.id), el("div", { class: "muted small", title: m.source || "" }, m.priced ? t("admin.in_price_list") : t("admin.catalogue_only"))),
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
      el("h3", {}, t("admin.import_prices")),
      el("p", { class: "muted small" }, t("admin.import_intro")),
      field(t("admin.file"), file),
      el("button", { type: "submit" }, t("admin.import")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = file.files[0];
      if (!chosen) return;
      const text = await chosen.text();
      const counts = await run(form, () => api("POST", "/api/admin/models/import", JSON.parse(text)));
      if (!counts) return;
      done(panel, t("admin.imported", { format: counts.format, added: count(counts.added), updated: count(counts.updated), unchanged: count(counts.unchanged), skipped: count(counts.skipped) }));
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
        t("admin.signup"),
        el("select", { name: "signup" }, el("option", { value: "open", selected: current.signup === "open" }, t("admin.signup_open")), el("option", { value: "closed", selected: current.signup === "closed" }, t("admin.signup_closed"))),
      ),
      field(t("admin.trial_credit"), el("input", { name: "trial_credit_usd", inputmode: "decimal", pattern: USD_PATTERN, required: true, value: current.trial_credit_usd })),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "anonymous_chat", checked: current.anonymous_chat }), t("admin.anonymous_chat")),
      field(t("admin.anonymous_rpm"), el("input", { name: "anonymous_chat_rpm", type: "number", min: 1, max: 600, step: 1, required: true, value: current.anonymous_chat_rpm })),
      field(t("admin.support_contact"), el("input", { name: "support_contact", maxlength: 200, placeholder: "WeChat: TokenHub_Support", value: current.support_contact })),
      el("label", { class: "check" }, el("input", { type: "checkbox", name: "email_verification", checked: current.email_verification }), t("admin.email_verification")),
      el("button", { type: "submit" }, t("admin.save_settings")),
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
      if (saved) done(form, t("admin.settings_saved"));
    });
    fill(panel, heading(t("admin.tab_settings")), el("p", { class: "muted small" }, t("admin.settings_intro")), form, await mailSettings());
  }

    /** The SMTP server account mail goes through; saved here, it overrides the configuration's. */
  async function mailSettings() {
    const card = el("div", { class: "card stack", id: "mail-settings" });
    const render = (mail) => {
      const saved = mail.saved || { host: "", port: 587, username: "", password_set: false, from: "", tls: "starttls" };
      const tls = el(
        "select",
        { name: "tls" },
        ["starttls", "tls", "none"].map((value) => el("option", { value, selected: saved.tls === value }, t(`admin.tls_${value}`))),
      );
      const form = el(
        "form",
        { class: "stack", id: "mail-form" },
        field(t("admin.smtp_host"), el("input", { name: "host", required: true, value: saved.host, placeholder: "smtp.example.com" })),
        field(t("admin.smtp_port"), el("input", { name: "port", type: "number", min: 1, max: 65535, required: true, value: saved.port })),
        field(t("admin.smtp_security"), tls),
        field(t("admin.smtp_username"), el("input", { name: "username", autocomplete: "off", value: saved.username })),
        field(t("admin.smtp_password"), el("input", { name: "password", type: "password", autocomplete: "new-password", placeholder: saved.password_set ? t("admin.smtp_password_kept") : "" })),
        field(t("admin.smtp_sender"), el("input", { name: "from", required: true, value: saved.from, placeholder: "TokenHub <noreply@example.com>" })),
        el("button", { type: "submit" }, t("admin.save_smtp")),
      );
      form.addEventListener("submit", async (event) => {
        event.preventDefault();
        const f = form.elements;
        const body = { host: f.host.value.trim(), port: Number(f.port.value), username: f.username.value.trim(), from: f.from.value.trim(), tls: f.tls.value };
        if (f.password.value) body.password = f.password.value;
        const next = await run(card, () => api("PUT", "/api/admin/mail", body));
        if (next) {
          render(next);
          done(card, t("admin.smtp_saved"));
        }
      });
      const revert = mail.saved ? button(t("admin.use_config_smtp"), async () => {
        const next = await run(card, () => api("DELETE", "/api/admin/mail"));
        if (next) render(next);
      }, { class: "ghost", id: "mail-revert" }) : null;
      const test = el(
        "form",
        { class: "row", id: "mail-test" },
        el("label", {}, t("admin.test_email_to"), el("input", { name: "to", type: "email", required: true, autocomplete: "email" })),
        el("button", { type: "submit", class: "ghost" }, t("admin.send_test_email")),
      );
      test.addEventListener("submit", async (event) => {
        event.preventDefault();
        const sent = await run(card, () => api("POST", "/api/admin/mail/test", { to: test.elements.to.value.trim() }));
        if (sent !== undefined) done(card, t("admin.test_mail_sent"));
      });
      fill(
        card,
        el("h3", {}, t("admin.mail_heading")),
        el("p", { class: "muted small", id: "mail-source" }, t("admin.mail_source", { source: t(`admin.mail_source_${mail.source}`) })),
        mail.public_url_set ? null : el("p", { class: "small", id: "mail-public-url" }, el("b", {}, t("admin.mail_needs_public_url"))),
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
    ["dashboard", t("admin.tab_dashboard"), dashboard],
    ["channels", t("admin.tab_channels"), channels],
    ["models", t("console.models"), models],
    ["catalogue", t("admin.tab_catalogue"), catalogue],
    ["users", t("admin.tab_users"), users],
    ["keys", t("admin.tab_keys"), allKeys],
    ["codes", t("admin.tab_codes"), codes],
    ["usage", t("admin.tab_usage"), usage],
    isRoot ? ["audit", t("admin.tab_audit"), audit] : null,
    ["settings", t("admin.tab_settings"), settings],
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
        root.replaceChildren(el("p", {}, t("admin.session_ended"), " ", el("a", { href: "/token/?next=/admin" }, t("admin.log_in_again"))));
        return;
      }
      const wanted = location.hash.slice(1);
      const initial = SECTIONS.some(([n]) => n === wanted) ? wanted : "dashboard";
      const tablist = el(
        "div",
        { role: "tablist", "aria-label": t("admin.sections"), class: "admin-tabs" },
        SECTIONS.map(([name, label]) =>
          el("button", { type: "button", role: "tab", id: `admin-tab-${name}`, "aria-controls": `admin-panel-${name}`, "aria-selected": String(name === initial) }, label),
        ),
      );
      const panels = SECTIONS.map(([name]) =>
        el("section", { role: "tabpanel", id: `admin-panel-${name}`, "aria-labelledby": `admin-tab-${name}`, tabindex: 0, hidden: name !== initial }, el("p", { class: "muted" }, t("admin.loading_short"))),
      );
      root.replaceChildren(el("h1", {}, t("nav.admin")), tablist, ...panels);
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
      notice(root, t("admin.load_failed", { error: error.message }));
    }
  })();
})();
