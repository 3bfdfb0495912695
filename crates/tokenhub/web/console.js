// The self-service console (/token/): sign up or log in; then balance, API keys,
// redemption codes and usage.
"use strict";

(() => {
  const { api, el, usd, time, count, notice, guard, t } = TH;
  const root = document.getElementById("console");
  const signupOpen = root.dataset.signup === "open";
  const verifyEmail = root.dataset.verifyEmail === "true";
  const models = JSON.parse(root.dataset.models || "[]");

  /** Where to go after logging in: `?next=/path` on this site only. */
  function nextPage() {
    const next = new URLSearchParams(location.search).get("next");
    return next && next.startsWith("/") && !next.startsWith("//") ? next : "/token/";
  }

  function authView() {
    const form = (mode) => {
      const f = el(
        "form",
        { class: "stack", id: `${mode}-form`, "aria-labelledby": `tab-${mode}` },
        el("label", {}, t("console.username"), el("input", { name: "username", autocomplete: "username", required: true, maxlength: 64 })),
        el("label", {}, t("console.password"), el("input", { name: "password", type: "password", required: true, minlength: mode === "signup" ? 8 : 1, autocomplete: mode === "signup" ? "new-password" : "current-password" })),
        mode === "signup" && verifyEmail ? el("label", {}, t("console.signup_email"), el("input", { name: "email", type: "email", required: true, autocomplete: "email" })) : null,
        el("button", { type: "submit" }, mode === "signup" ? t("console.create_account") : t("console.log_in")),
      );
      f.addEventListener("submit", async (event) => {
        event.preventDefault();
        const body = { username: f.elements.username.value.trim(), password: f.elements.password.value };
        if (f.elements.email) body.email = f.elements.email.value.trim();
        const done = await guard(f, () => api("POST", `/api/auth/${mode}`, body));
        if (done) location.assign(nextPage());
      });
      return f;
    };
    const panels = el("div", { class: "card", id: "auth" });
    const tablist = el(
      "div",
      { role: "tablist", "aria-label": t("console.account") },
      el("button", { role: "tab", id: "tab-login", "aria-controls": "panel-login", "aria-selected": "true" }, t("console.log_in")),
      signupOpen ? el("button", { role: "tab", id: "tab-signup", "aria-controls": "panel-signup", "aria-selected": "false" }, t("console.sign_up")) : null,
    );
    panels.append(
      tablist,
      el("div", { role: "tabpanel", id: "panel-login", "aria-labelledby": "tab-login" }, form("login")),
      signupOpen
        ? el("div", { role: "tabpanel", id: "panel-signup", "aria-labelledby": "tab-signup", hidden: true }, el("p", { class: "muted" }, t("console.trial_note")), form("signup"))
        : el("p", { class: "muted" }, t("console.signup_closed")),
    );
    root.replaceChildren(el("h1", {}, t("nav.console")), el("p", { class: "lead" }, t("console.lead")), panels, forgotForm());
    const reset = location.hash.match(/^#reset=([A-Za-z0-9_]+)$/);
    if (reset) root.replaceChildren(el("h1", {}, t("console.choose_password")), resetForm(reset[1]));
    TH.tabs(panels);
    if (location.hash === "#signup" && signupOpen) document.getElementById("tab-signup").click();
  }

  /** "Forgot your password?": mails a reset link to the account's address. */
  function forgotForm() {
    const form = el(
      "form",
      { class: "row", id: "forgot-form" },
      el("label", {}, t("console.email_address"), el("input", { name: "email", type: "email", required: true, autocomplete: "email" })),
      el("button", { type: "submit", class: "ghost" }, t("console.mail_reset_link")),
    );
    const outcome = el("div", { "aria-live": "polite" });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      outcome.replaceChildren();
      try {
        await api("POST", "/api/auth/password-reset", { email: form.elements.email.value.trim() });
        outcome.replaceChildren(el("div", { class: "notice ok", role: "status" }, t("console.reset_link_sent")));
      } catch (error) {
        outcome.replaceChildren(el("div", { class: "notice error", role: "alert" }, error.message));
      }
    });
    return el("details", { class: "card", id: "forgot" }, el("summary", {}, t("console.forgot_password")), form, outcome);
  }

  /** The page a mailed reset link opens: a new password, then back to logging in. */
  function resetForm(token) {
    const form = el(
      "form",
      { class: "card stack", id: "reset-form" },
      el("label", {}, t("console.new_password"), el("input", { name: "password", type: "password", required: true, minlength: 8, autocomplete: "new-password" })),
      el("button", { type: "submit" }, t("console.set_new_password")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const done = await guard(form, () => api("POST", "/api/auth/password-reset/confirm", { token, new_password: form.elements.password.value }));
      if (done !== undefined) {
        history.replaceState(null, "", "/token/");
        authView();
        notice(root, t("console.password_reset_done"), "ok");
      }
    });
    return form;
  }

  async function dashboard(session) {
    const account = el("section", { id: "account" });
    const keys = el("section", { id: "keys" });
    const usage = el("section", { id: "usage" });
    const all = () => Promise.all([renderAccount(account), renderKeys(keys), renderUsage(usage)]);
    // One Refresh for the whole console: balance, key spend and usage move together.
    const refresh = el("button", { type: "button", class: "ghost small", id: "console-refresh" }, t("common.refresh"));
    refresh.addEventListener("click", async () => {
      refresh.disabled = true;
      try {
        await guard(root, all);
      } finally {
        refresh.disabled = false;
      }
    });
    root.replaceChildren(
      el("div", { class: "chat-bar" }, el("h1", {}, t("console.hello", { name: session.user.name })), refresh),
      account,
      keys,
      usage,
      passwordForm(),
    );
    await all();
  }

  function passwordForm() {
    const form = el(
      "form",
      { class: "card stack", id: "password-form" },
      el("h2", {}, t("console.change_password")),
      el("label", {}, t("console.current_password"), el("input", { name: "current", type: "password", required: true, autocomplete: "current-password" })),
      el("label", {}, t("console.new_password"), el("input", { name: "next", type: "password", required: true, minlength: 8, autocomplete: "new-password" })),
      el("button", { type: "submit" }, t("console.change_password")),
      el("p", { class: "form-status", role: "status", "aria-live": "polite" }),
    );
    const status = form.querySelector(".form-status");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.replaceChildren();
      const body = { current_password: form.elements.current.value, new_password: form.elements.next.value };
      const changed = await guard(form, () => api("PUT", "/api/auth/password", body));
      if (changed !== undefined) {
        form.reset();
        status.replaceChildren(el("span", { class: "notice ok" }, t("console.password_changed")));
      }
    });
    return form;
  }

  /** Follows a mailed confirmation link (`#verify=`), signed in or not. */
  async function confirmEmail(token) {
    history.replaceState(null, "", "/token/");
    try {
      await api("POST", "/api/auth/verify-email", { token });
      return [t("console.email_confirmed"), "ok"];
    } catch (error) {
      return [error.message, "error"];
    }
  }

  /** For an account that has not confirmed its address yet: why, and a new link. */
  function pendingNotice(me) {
    const resend = el("button", { type: "button", class: "ghost small", id: "resend-verification" }, t("console.resend_link"));
    const outcome = el("span", { role: "status", "aria-live": "polite" });
    resend.addEventListener("click", async () => {
      resend.disabled = true;
      try {
        await api("POST", "/api/me/email/verification");
        outcome.textContent = t("console.link_sent");
      } catch (error) {
        outcome.textContent = error.message;
      } finally {
        resend.disabled = false;
      }
    });
    return el(
      "div",
      { class: "notice", id: "verification-pending", role: "status" },
      el("p", {}, t("console.confirm_email", { email: me.email })),
      el("div", { class: "row" }, resend, outcome),
    );
  }

  async function renderAccount(section) {
    const [me, ledger] = await Promise.all([api("GET", "/api/me"), api("GET", "/api/me/ledger?limit=500")]);
    const trial = ledger.data.filter((e) => e.kind === "trial").reduce((sum, e) => sum + Number(e.amount_usd), 0);
    const redeem = el(
      "form",
      { class: "row", id: "redeem-form" },
      el("label", {}, t("console.redemption_code"), el("input", { name: "code", required: true, autocomplete: "off" })),
      el("button", { type: "submit" }, t("console.redeem")),
    );
    // The outcome shows right under the form it answers, and only the latest one.
    const outcome = el("div", { id: "redeem-outcome", "aria-live": "polite" });
    const say = (message, kind) => outcome.replaceChildren(el("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : "status" }, message));
    redeem.elements.code.addEventListener("input", () => outcome.replaceChildren());
    redeem.addEventListener("submit", async (event) => {
      event.preventDefault();
      outcome.replaceChildren();
      try {
        const done = await api("POST", "/api/me/redeem", { code: redeem.elements.code.value.trim() });
        redeem.reset();
        balance.textContent = usd((await api("GET", "/api/me")).live_balance_usd);
        say(t("console.credited", { amount: usd(done.credited_usd) }), "ok");
      } catch (error) {
        say(error.message, "error");
      }
    });
    const balance = el("b", { id: "balance" }, usd(me.live_balance_usd));
    const email = el(
      "form",
      { class: "row", id: "email-form" },
      el("label", {}, t("console.reset_email"), el("input", { name: "email", type: "email", value: me.email || "", autocomplete: "email", placeholder: "you@example.com" })),
      el("button", { type: "submit", class: "ghost" }, t("console.save_email")),
    );
    const emailOutcome = el("div", { id: "email-outcome", "aria-live": "polite" });
    email.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("PUT", "/api/me/email", { email: email.elements.email.value.trim() || null });
        emailOutcome.replaceChildren(el("div", { class: "notice ok", role: "status" }, t("console.email_saved")));
      } catch (error) {
        emailOutcome.replaceChildren(el("div", { class: "notice error", role: "alert" }, error.message));
      }
    });
    section.replaceChildren(
      ...(me.email_verification_pending ? [pendingNotice(me)] : []),
      el("h2", {}, t("console.balance")),
      el(
        "div",
        { class: "grid" },
        el("div", { class: "stat" }, balance, el("span", {}, t("console.balance"))),
        el("div", { class: "stat" }, el("b", {}, usd(String(trial))), el("span", {}, t("console.trial_received"))),
      ),
      redeem,
      outcome,
      ...(me.password_reset_by_email ? [email, emailOutcome] : []),
    );
  }

  function keyForm(onCreated) {
    const modelBoxes = models.map((id) => el("label", { class: "check" }, el("input", { type: "checkbox", name: "models", value: id }), id));
    const form = el(
      "form",
      { class: "card", id: "key-form" },
      el("h3", {}, t("console.create_a_key")),
      el(
        "div",
        { class: "row filters" },
        el("label", {}, t("console.key_name"), el("input", { name: "name", required: true, maxlength: 64, placeholder: t("console.key_name_hint") })),
        el("label", {}, t("console.expires_optional"), el("input", { name: "expires", type: "date" })),
        el("label", {}, t("console.quota_optional"), el("input", { name: "quota", inputmode: "decimal", pattern: "[0-9]+(\\.[0-9]+)?", placeholder: t("console.no_limit") })),
      ),
      models.length
        ? el("fieldset", {}, el("legend", {}, t("console.allowed_models")), el("div", { class: "filters" }, modelBoxes))
        : null,
      el("button", { type: "submit" }, t("console.create_key")),
    );
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const chosen = [...form.querySelectorAll('input[name="models"]:checked')].map((i) => i.value);
      const body = { name: form.elements.name.value.trim() };
      if (form.elements.expires.value) body.expires_at = new Date(`${form.elements.expires.value}T23:59:59`).getTime();
      if (form.elements.quota.value.trim()) body.quota_usd = form.elements.quota.value.trim();
      if (chosen.length) body.allowed_models = chosen;
      const created = await guard(form, () => api("POST", "/api/me/keys", body));
      if (created) {
        form.reset();
        onCreated(created);
      }
    });
    return form;
  }

  function secretBox(created) {
    return el(
      "div",
      { class: "notice ok", role: "status", id: "new-key" },
      el("p", {}, el("b", {}, t("console.key_created", { name: created.key.name })), " ", t("console.copy_now")),
      el("div", { class: "secret" }, el("code", { id: "new-key-secret" }, created.secret), TH.copyButton(created.secret)),
    );
  }

  async function renderKeys(section, created) {
    const list = await api("GET", "/api/me/keys");
    const rows = list.data.map((key) => {
      const toggle = el("button", { type: "button", class: "small ghost" }, key.status === "active" ? t("common.disable") : t("common.enable"));
      toggle.addEventListener("click", async () => {
        const done = await guard(section, () => api("PATCH", `/api/me/keys/${key.id}`, { enabled: key.status !== "active" }));
        if (done) renderKeys(section);
      });
      const remove = el("button", { type: "button", class: "small danger" }, t("common.delete"));
      remove.addEventListener("click", async () => {
        if (!confirm(t("console.confirm_delete_key", { name: key.name }))) return;
        const done = await guard(section, () => api("DELETE", `/api/me/keys/${key.id}`));
        if (done !== undefined) renderKeys(section);
      });
      const status = el("span", { class: `badge ${key.status === "active" ? "ok" : "bad"}` }, TH.label("status", key.status));
      return el(
        "tr",
        { dataset: { keyId: key.id } },
        el("td", {}, key.name || "—"),
        el("td", {}, el("code", {}, key.prefix)),
        el("td", {}, status),
        el("td", { class: "hide-narrow" }, key.allowed_models ? key.allowed_models.join(", ") : t("console.all_models")),
        el("td", { class: "num" }, `${usd(key.spent_usd)}${key.quota_usd ? " / " + usd(key.quota_usd) : ""}`),
        el("td", { class: "hide-narrow" }, key.expires_at ? time(key.expires_at) : t("console.never")),
        el("td", {}, el("div", { class: "filters" }, toggle, remove)),
      );
    });
    const table = el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { id: "keys-table" },
        el("thead", {}, el("tr", {}, [t("console.key_name"), t("console.key"), t("common.status"), t("console.models"), t("console.spent_quota"), t("console.expires"), ""].map((h, i) => el("th", { scope: "col", class: i === 3 || i === 5 ? "hide-narrow" : i === 4 ? "num" : null }, h)))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("console.no_keys")))),
      ),
    );
    const parts = [el("h2", {}, t("console.api_keys")), created && secretBox(created), table, keyForm((newKey) => renderKeys(section, newKey))];
    section.replaceChildren(...parts.filter(Boolean));

    if (created) document.getElementById("new-key-secret").scrollIntoView({ block: "center" });
  }

  async function renderUsage(section) {
    const days = TH.lastDays(30);
    const from = Date.parse(`${days[0]}T00:00:00Z`);
    const [summary, recent] = await Promise.all([
      api("GET", `/api/me/usage/summary?group_by=day&from=${from}`),
      api("GET", "/api/me/usage?limit=20"),
    ]);
    const byDay = new Map(summary.data.map((d) => [d.group, d]));
    const points = days.map((day) => {
      const d = byDay.get(day);
      const tokens = d ? d.prompt_tokens + d.completion_tokens : 0;
      return { label: day.slice(5), bar: d ? Number(d.cost_usd) : 0, barText: usd(d ? d.cost_usd : "0"), line: tokens, lineText: TH.plural("count.tokens", tokens) };
    });
    const rows = recent.data.map((r) =>
      el(
        "tr",
        {},
        el("td", {}, time(r.created_at), el("div", { class: "muted small request-id" }, el("code", { title: t("console.request_id") }, r.request_id))),
        el("td", {}, r.model ? el("code", {}, r.model) : el("span", { class: "muted" }, t("console.no_model"))),
        el("td", { class: "num" }, count(r.prompt_tokens)),
        el("td", { class: "num" }, count(r.completion_tokens)),
        el("td", { class: "num" }, usd(r.cost_usd)),
        el("td", {}, el("span", { class: `badge ${r.status < 400 ? "ok" : "bad"}` }, String(r.status)), r.error ? el("span", { class: "muted small" }, ` ${r.error}`) : null),
        el("td", { class: "num hide-narrow" }, t("common.ms", { n: count(r.latency_ms) })),
      ),
    );
    section.replaceChildren(
      el("h2", {}, t("console.usage_30_days")),
      TH.chart(points, { barLabel: t("chart.spend_usd"), lineLabel: t("chart.tokens"), barFormat: (v) => `$${+v.toPrecision(2)}` }),
      el("h3", {}, t("console.recent_requests")),
      el(
        "div",
        { class: "table-wrap" },
        el(
          "table",
          { id: "usage-table" },
          el("thead", {}, el("tr", {}, [t("common.time"), t("price.model"), t("console.prompt"), t("console.completion"), t("console.cost"), t("common.status"), t("console.latency")].map((h, i) => el("th", { scope: "col", class: i >= 2 && i <= 4 ? "num" : i === 6 ? "num hide-narrow" : null }, h)))),
          el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 7, class: "muted" }, t("console.no_requests")))),
        ),
      ),
    );
  }

  (async () => {
    try {
      // The server knows whether the cookie is valid; asking the API would log a 401.
      const session = root.dataset.signedIn === "true" ? await TH.session() : null;
      const verify = location.hash.match(/^#verify=([A-Za-z0-9_]+)$/);
      const confirmed = verify ? await confirmEmail(verify[1]) : null;

      if (session) await dashboard(session);
      else authView();
      if (confirmed) notice(root, ...confirmed);
    } catch (error) {
      notice(root, t("console.load_failed", { error: error.message }));
    }
  })();
})();
