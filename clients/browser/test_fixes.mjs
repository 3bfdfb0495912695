// Issue #17's numbered bugs, one browser test each (run by scripts/web-tests.sh after
// test_web.mjs, against the same gateway: mock-upstream streams 8 pieces 150 ms apart;
// `mock-gpt` is paid, `mock-free` and `tokenhub-demo` are free).
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { BASE, MOCK, SHOTS, ROOT_PASSWORD, problems, context, open, assertNoProblems, apiSession, signedIn, newUser, eventually, until, phoneProblems, searchUsers, nextDialog } from "./support.mjs";

let root;
const RUN = Date.now().toString(36);

before(async () => {
  root = await apiSession("root", ROOT_PASSWORD);
});

/** Calls /v1 with an API key; answers {status, body}. */
async function v1(secret, body, raw) {
  const response = await fetch(`${BASE}/v1/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: raw ?? JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** A signed-in user with a key (optionally limited to `models`); returns its pieces. */
async function userWithKey(name, models) {
  const user = await newUser(root, `${name}-${RUN}`);
  const call = await apiSession(`${name}-${RUN}`, user.password);
  const key = await call("POST", "/api/me/keys", { name: "k", ...(models ? { allowed_models: models } : {}) });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { ...user, name: `${name}-${RUN}`, call, secret: key.body.secret };
}

async function adminPage(hash) {
  const { ctx } = await signedIn("root", ROOT_PASSWORD);
  const { page } = await open(ctx, `/admin${hash}`);
  await page.waitForSelector('[role="tab"][aria-selected="true"]');
  return { ctx, page };
}

test("(1) the model edit form keeps and edits every price, cache writes included", async () => {
  const id = `cw-model-${RUN}`;
  const created = await root("POST", "/api/admin/models", {
    id, provider: "CacheCo", context: 1000, input_usd_per_mtok: "3", output_usd_per_mtok: "15",
    cached_input_usd_per_mtok: "0.3", cache_write_usd_per_mtok: "3.75", cache_write_1h_usd_per_mtok: "6",
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const { ctx, page } = await adminPage("#models");
  await page.click(`button[aria-label="Edit ${id}"]`);
  const form = `form[id="model-edit-${id}"]`;
  assert.equal(await page.inputValue(`${form} [name=cache_write_usd_per_mtok]`), "3.75");
  await page.fill(`${form} [name=input_usd_per_mtok]`, "2.5");
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(form, { state: "detached" });
  let stored = (await root("GET", `/api/admin/models/${id}`)).body;
  assert.deepEqual(
    [stored.input_usd_per_mtok, stored.cached_input_usd_per_mtok, stored.cache_write_usd_per_mtok, stored.cache_write_1h_usd_per_mtok],
    ["2.5", "0.3", "3.75", "6"],
  );
  await page.click(`button[aria-label="Edit ${id}"]`);
  await page.fill(`${form} [name=cache_write_usd_per_mtok]`, "4");
  await page.click(`${form} button[type=submit]`);
  await page.waitForSelector(form, { state: "detached" });
  stored = (await root("GET", `/api/admin/models/${id}`)).body;
  assert.equal(stored.cache_write_usd_per_mtok, "4");
  assert.match(await page.textContent(`tr[data-model-id="${id}"]`), /write \$4\.00/);
  assertNoProblems();
  await ctx.close();
});

test("(2) New chat during a stream stops it and the next request carries only the new message", async () => {
  const ctx = await context();
  const { page } = await open(ctx, "/chat");
  const bodies = [];
  page.on("request", (r) => r.url().endsWith("/chat/completions") && bodies.push(JSON.parse(r.postData())));
  await page.selectOption("#chat-model", "mock-free");
  await page.fill("#chat-input", "first question");
  // Settles when the first stream ends, finished or (here) aborted.
  const firstEnded = new Promise((resolve) => {
    const ended = (r) => r.url().endsWith("/chat/completions") && resolve();
    page.on("requestfinished", ended);
    page.on("requestfailed", ended);
  });
  await page.click("#chat-send");
  await page.waitForFunction(() => document.querySelector("#chat-log li.assistant")?.textContent.length > 0);
  await page.click("#chat-clear");
  assert.equal(await page.$$eval("#chat-log li", (l) => l.length), 0);
  await firstEnded;
  await page.fill("#chat-input", "second question");
  await page.click("#chat-send");
  await page.waitForFunction(() => {
    const li = document.querySelector("#chat-log li.assistant");
    return li && !li.hasAttribute("aria-busy");
  });
  assert.equal(bodies.length, 2);
  assert.deepEqual(bodies[1].messages, [{ role: "user", content: "second question" }]);
  assert.equal(await page.$$eval("#chat-log li", (l) => l.length), 2, "only the new exchange is shown");
  assertNoProblems();
  await ctx.close();
});

test("(3) underscores and asterisks inside words stay literal; emphasis at word edges still works", async () => {
  const ctx = await context();
  const { page } = await open(ctx, "/chat");
  await page.selectOption("#chat-model", "mock-free");
  await page.fill("#chat-input", "DEEPSEEK_API_KEY 2*3*4 snake_case _edge_ *star*");
  await page.click("#chat-send");
  await page.waitForFunction(() => {
    const li = document.querySelector("#chat-log li.assistant");
    return li && !li.hasAttribute("aria-busy");
  });
  const reply = await page.$eval("#chat-log li.assistant", (li) => ({ text: li.textContent, em: [...li.querySelectorAll("em")].map((e) => e.textContent) }));
  assert.match(reply.text, /DEEPSEEK_API_KEY 2\*3\*4 snake_case/);
  assert.deepEqual(reply.em, ["edge", "star"]);
  // The demo model's own reply names DEEPSEEK_API_KEY.
  await page.selectOption("#chat-model", "tokenhub-demo");
  await page.fill("#chat-input", "hello");
  await page.click("#chat-send");
  await page.waitForFunction(() => {
    const all = document.querySelectorAll("#chat-log li.assistant");
    return all.length === 2 && !all[1].hasAttribute("aria-busy");
  });
  const demo = await page.$eval("#chat-log li.assistant:last-of-type", (li) => ({ text: li.textContent, em: li.querySelectorAll("em").length }));
  assert.match(demo.text, /DEEPSEEK_API_KEY/);
  assert.equal(demo.em, 0);
  assertNoProblems();
  await ctx.close();
});

test("(5) a model the key may not use is 404 model_not_found, as the docs say", async () => {
  const user = await userWithKey("limited", ["mock-gpt"]);
  const refused = await v1(user.secret, { model: "mock-free", messages: [{ role: "user", content: "hi" }] });
  assert.equal(refused.status, 404);
  assert.equal(refused.body.error.code, "model_not_found");
  const ctx = await context();
  const { page } = await open(ctx, "/");
  const errors = await page.textContent("section:has(#errors)");
  assert.match(errors, /404 unknown model or one the key may not use/);
  assert.doesNotMatch(errors, /403[^,]*model/);
  assertNoProblems();
  await ctx.close();
});

test("(6) refused requests are listed under the model they named, or as 'no model'", async () => {
  const user = await userWithKey("refused");
  assert.equal((await v1(user.secret, { model: "no-such-model", messages: [{ role: "user", content: "x" }] })).status, 404);
  assert.equal((await v1(user.secret, null, "{not json")).status, 400);
  const { ctx } = await signedIn(user.name, user.password);
  const { page } = await open(ctx, "/token/");
  await eventually(page, async () => {
    const models = await page.$$eval("#usage-table tbody tr td:nth-child(2)", (tds) => tds.map((td) => td.textContent.replace(/^Model/, "")));
    assert.deepEqual(models.sort(), ["no model", "no-such-model"]);
  }, "the refused requests are not listed");
  assertNoProblems();
  await ctx.close();
});

test("(7) the system user ~anonymous can be neither disabled nor promoted", async () => {
  const list = await root("GET", "/api/admin/users?search=anonymous");
  const anonymous = list.body.data.find((u) => u.name === "~anonymous");
  assert.ok(anonymous?.system, JSON.stringify(list.body));
  for (const change of [{ status: "disabled" }, { role: "admin" }]) {
    const refused = await root("PATCH", `/api/admin/users/${anonymous.id}`, change);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
  }
  assert.equal((await root("DELETE", `/api/admin/users/${anonymous.id}`)).status, 409);
  const { ctx, page } = await adminPage("#users");
  const row = `tr[data-user-id="${anonymous.id}"]`;
  await page.waitForSelector(row);
  assert.equal(await page.isDisabled(`${row} select`), true);
  assert.equal(await page.isVisible(`${row} button:has-text("Disable")`), false);
  assert.match(await page.textContent(row), /system/);
  assertNoProblems();
  await ctx.close();
});

test("(8) a balance adjustment asks for confirmation and is bounded", async () => {
  const user = await newUser(root, `adjust-${RUN}`, "5");
  assert.equal((await root("POST", `/api/admin/users/${user.id}/balance`, { amount_usd: "1000000", reason: "typo" })).status, 400);
  assert.equal((await root("POST", `/api/admin/users/${user.id}/balance`, { amount_usd: "-6", reason: "too much" })).status, 400);
  const { ctx, page } = await adminPage("#users");
  const row = await searchUsers(page, `adjust-${RUN}`, user.id);
  await page.fill(`${row} [name=amount]`, "2.5");
  await page.fill(`${row} [name=reason]`, "goodwill");
  // Waits for the dialog itself, not for a fixed time (a busy machine shows it late).
  const asked = nextDialog(page);
  await page.click(`${row} form.adjust button[type=submit]`);
  assert.match(await asked, /Credit \$2\.50 to adjust-.*\n.*\$5\.00 → \$7\.50/);
  assert.equal((await root("GET", `/api/admin/users/${user.id}`)).body.balance_usd, "5", "dismissed: nothing booked");
  page.once("dialog", (d) => d.accept());
  await page.click(`${row} form.adjust button[type=submit]`);
  await page.waitForFunction((r) => document.querySelector(r).textContent.includes("$7.50"), row);
  assert.equal((await root("GET", `/api/admin/users/${user.id}`)).body.balance_usd, "7.5");
  assertNoProblems();
  await ctx.close();
});

test("(9) the console's Refresh updates the balance and the key's spend", async () => {
  const user = await userWithKey("refresh");
  const { ctx, call } = await signedIn(user.name, user.password);
  const { page } = await open(ctx, "/token/");
  await page.waitForSelector("#keys-table");
  const before = [await page.textContent("#balance"), await page.textContent("#keys-table tbody tr td:nth-child(5)")];
  const spent = async () => (await call("GET", "/api/me/keys")).body.data?.[0]?.spent_usd;
  const spentBefore = await spent();
  assert.equal((await v1(user.secret, { model: "mock-gpt", messages: [{ role: "user", content: "bill me" }] })).status, 200);
  await until(async () => (await spent()) !== spentBefore, "the request is charged to the key");
  await page.click("#console-refresh");
  // Refresh renders the account and the keys independently: wait for both, either order.
  await page.waitForFunction(
    ([balance, spend]) =>
      document.querySelector("#balance").textContent !== balance &&
      document.querySelector("#keys-table tbody tr td:nth-child(5)").textContent !== spend,
    before,
  );
  assertNoProblems();
  await ctx.close();
});

test("(10) redeem outcomes show under the form, and a failure replaces an old success", async () => {
  const codes = await root("POST", "/api/admin/redemptions", { count: 1, amount_usd: "2" });
  const user = await newUser(root, `redeem-${RUN}`);
  const { ctx } = await signedIn(`redeem-${RUN}`, user.password);
  const { page } = await open(ctx, "/token/");
  await page.waitForSelector("#redeem-form");
  await page.fill("#redeem-form [name=code]", codes.body.codes[0].code);
  await page.click("#redeem-form button[type=submit]");
  await page.waitForSelector("#redeem-outcome .notice.ok");
  assert.match(await page.textContent("#redeem-outcome"), /Credited \$2\.00/);
  assert.equal(await page.textContent("#balance"), "$7.00");
  const placed = await page.$eval("#redeem-form", (f) => f.nextElementSibling.id);
  assert.equal(placed, "redeem-outcome", "the outcome follows its form");
  await page.fill("#redeem-form [name=code]", "not-a-code");
  assert.equal(await page.$$eval("#redeem-outcome .notice", (n) => n.length), 0, "typing clears the old outcome");
  await page.click("#redeem-form button[type=submit]");
  await page.waitForSelector("#redeem-outcome .notice.error");
  assert.equal(await page.$$eval("#redeem-outcome .notice.ok, #account > .notice", (n) => n.length), 0);
  // The refused code's 404 is logged by Chromium; nothing else may have been.
  assert.deepEqual(problems.splice(0).filter((p) => !/status of 404/.test(p)), []);
  await ctx.close();
});

test("(11) the admin models table fits at 1280 px, Delete buttons included", async () => {
  const { ctx, page } = await adminPage("#models");
  await page.waitForSelector("#models-table tbody tr[data-model-id]");
  const fit = await page.$eval("#models-table", (t) => {
    const wrap = t.closest(".table-wrap");
    const deletes = [...t.querySelectorAll("button.danger")].map((b) => b.getBoundingClientRect().right);
    return { overflow: wrap.scrollWidth - wrap.clientWidth, right: Math.max(...deletes), width: wrap.getBoundingClientRect().right };
  });
  assert.ok(fit.overflow <= 0, `the table scrolls by ${fit.overflow} px`);
  assert.ok(fit.right <= fit.width, `a Delete button ends at ${fit.right} px, the table at ${fit.width}`);
  assertNoProblems();
  await ctx.close();
});

test("(12) a channel without its key says which variable to set, not 'healthy'", async () => {
  const env = `TOKENHUB_WEB_TEST_UNSET_${RUN.toUpperCase()}`;
  const created = await root("POST", "/api/admin/channels", { name: `keyless-${RUN}`, type: "deepseek", base_url: "https://api.deepseek.com", api_key_env: env, models: ["mock-gpt"] });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const { ctx, page } = await adminPage("#channels");
  const row = `tr[data-channel-id="${created.body.id}"]`;
  await page.waitForSelector(row);
  const health = await page.textContent(`${row} .channel-health`);
  assert.doesNotMatch(health, /healthy/);
  assert.match(health, new RegExp(`not serving.*no API key: set ${env}`));
  await page.click(`${row} .test-channel`);
  await page.waitForFunction((r) => !document.querySelector(`${r} .test-result`).textContent.includes("Testing"), row);
  assert.match(await page.textContent(`${row} .test-result`), new RegExp(`no API key: set ${env}`));
  await root("DELETE", `/api/admin/channels/${created.body.id}`);
  // The refused test's 400 is logged by Chromium; nothing else may have been.
  assert.deepEqual(problems.splice(0).filter((p) => !/status of 400/.test(p)), []);
  await ctx.close();
});

test("(13) users read a plain message when the provider fails; admins read the detail", async () => {
  const model = `dead-model-${RUN}`;
  await root("POST", "/api/admin/models", { id: model, provider: "Dead", context: 1000, input_usd_per_mtok: "1", output_usd_per_mtok: "1" });
  const channel = await root("POST", "/api/admin/channels", { name: `dead-${RUN}`, type: "openai", base_url: "http://127.0.0.1:9/v1", api_key: "x", models: [model] });
  assert.equal(channel.status, 201, JSON.stringify(channel.body));
  const user = await newUser(root, `plain-${RUN}`);
  const me = (await root("GET", "/api/me")).body;
  await root("POST", `/api/admin/users/${me.id}/balance`, { amount_usd: "5", reason: "test credit" });
  const ask = async (who, password) => {
    const { ctx } = await signedIn(who, password);
    const { page } = await open(ctx, "/chat");
    await eventually(page, async () => assert.ok(await page.$(`#chat-model option[value="${model}"]`)), "the model is not offered");
    await page.selectOption("#chat-model", model);
    await page.fill("#chat-input", "hello");
    await page.click("#chat-send");
    await page.waitForSelector("#chat-log li.error");
    const text = await page.textContent("#chat-log li.error");
    return { ctx, text };
  };
  const seen = await ask(`plain-${RUN}`, user.password);
  assert.match(seen.text, /not available right now/);
  assert.doesNotMatch(seen.text, /os error|refused|127\.0\.0\.1|_API_KEY/i);
  const { page } = await open(seen.ctx, "/token/");
  await page.waitForSelector("#usage-table");
  assert.doesNotMatch(await page.textContent("#usage-table"), /os error|refused|127\.0\.0\.1/i);
  await seen.ctx.close();
  const admin = await ask("root", ROOT_PASSWORD);
  assert.match(admin.text, /reach upstream|refused|cooling down/i, "admins read what to fix");
  await admin.ctx.close();
  await root("DELETE", `/api/admin/channels/${channel.body.id}`);
  // The failed requests logged console errors (their HTTP status); nothing else may have.
  const unexpected = problems.splice(0).filter((p) => !/status of (5\d\d|429)/.test(p));
  assert.deepEqual(unexpected, []);
});

test("(14) unknown URLs: an HTML page for browsers, JSON for API clients", async () => {
  const json = await fetch(`${BASE}/no/such/page`, { headers: { Accept: "application/json" } });
  assert.equal(json.status, 404);
  assert.equal((await json.json()).error.code, "unknown_url");
  const ctx = await context();
  const { page, response } = await open(ctx, "/no/such/page");
  assert.equal(response.status(), 404);
  assert.match(response.headers()["content-type"], /text\/html/);
  assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
  assert.equal(await page.textContent("h1"), "Page not found");
  assert.match(await page.textContent("main"), /\/no\/such\/page/);
  problems.splice(0); // the 404 itself is logged by Chromium
  await ctx.close();
});

test("(15) admin tabs follow the URL hash and Back/Forward", async () => {
  const { ctx, page } = await adminPage("#users");
  const selected = () => page.getAttribute('[role="tab"][aria-selected="true"]', "id");
  assert.equal(await selected(), "admin-tab-users");
  await page.click("#admin-tab-codes");
  assert.equal(new URL(page.url()).hash, "#codes");
  await page.click("#admin-tab-usage");
  await page.goBack();
  await page.waitForFunction(() => document.querySelector("#admin-tab-codes").getAttribute("aria-selected") === "true");
  assert.equal(new URL(page.url()).hash, "#codes");
  await page.goBack();
  await page.waitForFunction(() => document.querySelector("#admin-tab-users").getAttribute("aria-selected") === "true");
  await page.goForward();
  await page.waitForFunction(() => document.querySelector("#admin-tab-codes").getAttribute("aria-selected") === "true");
  assert.ok(await page.isVisible("#admin-panel-codes"));
  assertNoProblems();
  await ctx.close();
});

test("(17) one model id rule: the form and the API refuse the same ids", async () => {
  // 101 characters, 202 bytes: the limit is in bytes on both sides.
  const long = "é".repeat(101);
  for (const id of ["has space", long]) {
    const refused = await root("POST", "/api/admin/models", { id, provider: "X", input_usd_per_mtok: "1", output_usd_per_mtok: "1" });
    assert.equal(refused.status, 400, id);
  }
  const accepted = `ok-${"m".repeat(190)}`;
  assert.equal((await root("POST", "/api/admin/models", { id: accepted, provider: "X", input_usd_per_mtok: "1", output_usd_per_mtok: "1" })).status, 201);
  await root("DELETE", `/api/admin/models/${accepted}`);
  const { ctx, page } = await adminPage("#models");
  await page.waitForSelector("#model-form");
  const requests = [];
  page.on("request", (r) => r.method() === "POST" && r.url().endsWith("/api/admin/models") && requests.push(r));
  for (const id of ["has space", long]) {
    await page.fill("#model-form [name=id]", id);
    assert.equal(await page.$eval("#model-form [name=id]", (i) => i.validity.valid), false, id);
  }
  await page.fill("#model-form [name=id]", accepted);
  assert.equal(await page.$eval("#model-form [name=id]", (i) => i.validity.valid), true);
  await page.fill("#model-form [name=id]", "has space");
  await page.fill("#model-form [name=provider]", "X");
  await page.fill("#model-form [name=input_usd_per_mtok]", "1");
  await page.fill("#model-form [name=output_usd_per_mtok]", "1");
  // The browser's validation refuses the submission with an `invalid` event.
  const refused = page.$eval("#model-form [name=id]", (input) => new Promise((resolve) => input.addEventListener("invalid", () => resolve(true), { once: true })));
  await page.click("#model-form button[type=submit]");
  assert.equal(await refused, true);
  assert.equal(requests.length, 0, "an invalid id is not sent");
  assertNoProblems();
  await ctx.close();
});

test("(18) one money format, ISO times in CSV, and a log-out in the header", async () => {
  const user = await userWithKey("formats");
  assert.equal((await v1(user.secret, { model: "mock-gpt", messages: [{ role: "user", content: "x" }] })).status, 200);
  let csv = "";
  for (let i = 0; i < 30 && csv.split("\r\n").filter(Boolean).length < 2; i++) {
    if (i) await new Promise((r) => setTimeout(r, 200)); // usage is written in the background
    csv = await (await fetch(`${BASE}/api/me/usage/export`, { headers: { Cookie: user.call.cookie } })).text();
  }
  const [head, first] = csv.split("\r\n");
  const at = head.split(",").indexOf("created_at");
  assert.match(first.split(",")[at], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const { ctx } = await signedIn(user.name, user.password);
  const { page } = await open(ctx, "/token/");
  await page.waitForSelector("#usage-table tbody tr");
  const money = [await page.textContent("#balance"), ...(await page.$$eval("#usage-table tbody td:nth-child(5), #keys-table tbody td:nth-child(5)", (tds) => tds.map((td) => td.textContent.replace(/^\D*?(?=-?\$)/, ""))))];
  for (const amount of money) assert.match(amount, /^-?\$\d+\.\d{2,6}( \/ -?\$\d+\.\d{2,6})?$/, amount);
  const aligned = await page.$$eval("#usage-table th.num, #usage-table td.num", (cells) => cells.every((c) => getComputedStyle(c).textAlign === "right"));
  assert.ok(aligned, "numeric columns are right-aligned");
  await Promise.all([page.waitForURL(`${BASE}/`), page.click("#header-logout")]);
  assert.ok(await page.isVisible("header a.button[href='/token/']"), "signed out: the header offers Sign in");
  assert.equal((await user.call("GET", "/api/me")).status, 200, "only the browser's session ended");
  assertNoProblems();
  await ctx.close();
});

test("(16) at 390 px no page scrolls sideways and key columns stay visible or become labelled cards; screenshots of every page", async () => {
  const shoot = async (page, name) => {
    for (const [label, width, height] of [["desktop", 1280, 900], ["phone", 390, 844]]) {
      await page.setViewportSize({ width, height });
      await page.waitForFunction((w) => window.innerWidth === w, width);
      if (label === "phone") assert.deepEqual(await phoneProblems(page), [], name);
      await page.screenshot({ path: `${SHOTS}/${name}-${label}.png`, fullPage: true, timeout: 60_000 }); // long pages (the catalogue) on a busy machine
    }
  };
  const visitor = await context();
  for (const [path, name] of [["/", "docs"], ["/pricing", "pricing"], ["/chat", "chat"], ["/token/", "token-signed-out"], ["/no-such-page", "not-found"]]) {
    const { page } = await open(visitor, path);
    await shoot(page, name);
  }
  await visitor.close();
  const user = await userWithKey("phone");
  assert.equal((await v1(user.secret, { model: "mock-gpt", messages: [{ role: "user", content: "x" }] })).status, 200);
  const signed = await signedIn(user.name, user.password);
  const { page: consolePage } = await open(signed.ctx, "/token/");
  await consolePage.waitForSelector("#usage-table tbody tr");
  await shoot(consolePage, "token-console");
  const { page: chat } = await open(signed.ctx, "/chat");
  await shoot(chat, "chat-signed-in");
  await signed.ctx.close();
  const { ctx, page } = await adminPage("#dashboard");
  for (const tab of ["dashboard", "channels", "models", "catalogue", "users", "keys", "codes", "usage", "audit", "settings"]) {
    await page.click(`#admin-tab-${tab}`);
    await page.waitForFunction((t) => !document.getElementById(`admin-panel-${t}`).hasAttribute("aria-busy") && !document.getElementById(`admin-panel-${t}`).textContent.startsWith("Loading"), tab);
    await shoot(page, `admin-${tab}`);
    await page.setViewportSize({ width: 1280, height: 900 });
  }
  problems.splice(0).filter((p) => !p.includes("404")).forEach((p) => assert.fail(p));
  await ctx.close();
});

test("the channel form sets a model map, several keys, timeouts and concurrency; fetches models; tests all", async () => {
  const name = `full-${RUN}`;
  const { ctx, page } = await adminPage("#channels");
  await page.waitForSelector("#channel-form");
  await page.fill("#channel-form [name=name]", name);
  await page.selectOption("#channel-form [name=type]", "openai");
  await page.fill("#channel-form [name=base_url]", MOCK);
  await page.fill("#channel-form [name=api_key]", "key-one");
  await page.fill("#channel-form [name=more_keys]", "key-two\nkey-three");
  await page.fill("#channel-form [name=models]", `mapped-${RUN}`);
  await page.fill("#channel-form [name=model_map]", `mapped-${RUN} = mock-gpt`);
  await page.click("#channel-form details.channel-limits summary");
  await page.fill("#channel-form [name=connect_timeout_ms]", "5000");
  await page.fill("#channel-form [name=max_concurrency]", "4");
  await page.click("#channel-form [type=submit]");
  await page.waitForFunction((n) => document.querySelector("#channels-table")?.textContent.includes(n), name).catch(async (e) => assert.fail(`${e.message}: ${await page.textContent("#admin-panel-channels")}`));
  const stored = (await root("GET", "/api/admin/channels")).body.data.find((c) => c.name === name);
  assert.equal(stored.api_keys_masked.length, 3);
  assert.deepEqual(stored.model_map, { [`mapped-${RUN}`]: "mock-gpt" });
  assert.deepEqual([stored.connect_timeout_ms, stored.max_concurrency], [5000, 4]);

  await page.click(`button[aria-label="Edit channel ${name}"]`);
  await page.click("#channel-edit-form .fetch-models");
  await page.waitForFunction(() => /models offered by the upstream/.test(document.querySelector("#channel-edit-form").textContent));
  assert.match(await page.inputValue("#channel-edit-form [name=models]"), new RegExp(`mapped-${RUN}, .+`));
  assert.equal(await page.inputValue("#channel-edit-form [name=connect_timeout_ms]"), "5000");

  await page.click("#channels-test-all");
  await page.waitForSelector("#channel-checks-table");
  assert.match(await page.textContent("#channel-checks-table"), new RegExp(`${name}.*mapped-${RUN}.*mock-gpt`));
  await root("DELETE", `/api/admin/channels/${stored.id}`);
  assert.deepEqual(problems.splice(0).filter((p) => !/status of 4\d\d/.test(p)), []);
  await ctx.close();
});

test("an admin's user page: keys (disable), ledger, usage, credit with confirmation, password reset", async () => {
  const user = await userWithKey("page");
  assert.equal((await v1(user.secret, { model: "mock-gpt", messages: [{ role: "user", content: "x" }] })).status, 200);
  const { ctx, page } = await adminPage("#users");
  await searchUsers(page, user.name, user.id);
  await page.click(`button[aria-label="Open ${user.name}'s page"]`);
  await page.waitForSelector("#user-keys-table");
  assert.match(await page.textContent("#user-ledger-table"), /opening balance/);
  await eventually(page, async () => {
    if (!(await page.$("#user-usage-table"))) {
      await page.waitForSelector("#admin-tab-users");
      await searchUsers(page, user.name, user.id);
      await page.click(`button[aria-label="Open ${user.name}'s page"]`);
      await page.waitForSelector("#user-usage-table");
    }
    assert.match(await page.textContent("#user-usage-table"), /mock-gpt/);
  }, "the user's request is not on their page");
  await page.click('#user-keys-table button[aria-label="Disable key k"]');
  await page.waitForFunction(() => /disabled/.test(document.querySelector("#user-keys-table")?.textContent || ""));
  assert.equal((await v1(user.secret, { model: "mock-gpt", messages: [{ role: "user", content: "x" }] })).status, 401);

  page.once("dialog", (d) => d.accept());
  await page.fill("#user-page form.adjust [name=amount]", "1");
  await page.fill("#user-page form.adjust [name=reason]", "page credit");
  await page.click("#user-page form.adjust button[type=submit]");
  await page.waitForFunction(() => /Balance now/.test(document.querySelector("#user-page").textContent));

  page.once("dialog", (d) => d.accept());
  await page.fill("#user-password-form [name=password]", "a-brand-new-password");
  await page.click("#user-password-form button[type=submit]");
  await page.waitForFunction(() => /Password set/.test(document.querySelector("#user-page").textContent));
  assert.equal((await user.call("GET", "/api/me")).status, 401, "the old session ended");
  await apiSession(user.name, "a-brand-new-password");
  assert.deepEqual(problems.splice(0).filter((p) => !/status of 4\d\d/.test(p)), []);
  await ctx.close();
});

test("the admin's key list searches by user, key name and prefix, and disables a key", async () => {
  const user = await userWithKey("keylist");
  const mine = (await user.call("GET", "/api/me/keys")).body.data[0];
  const { ctx, page } = await adminPage("#keys");
  for (const search of [user.name, mine.prefix]) {
    await page.fill("#keys-search [name=search]", search);
    await page.click("#keys-search button[type=submit]");
    await page.waitForFunction((id) => document.querySelectorAll("#all-keys-table tbody tr").length === 1 && document.querySelector(`#all-keys-table tr[data-key-id="${id}"]`), mine.id);
  }
  page.once("dialog", (d) => d.accept());
  await page.click(`#all-keys-table button[aria-label="Disable key ${mine.prefix}"]`);
  await page.waitForFunction(() => /disabled/.test(document.querySelector("#all-keys-table tbody").textContent));
  assert.equal((await v1(user.secret, { model: "mock-gpt", messages: [{ role: "user", content: "x" }] })).status, 401);
  assertNoProblems();
  await ctx.close();
});

test("chat signed in: a heading, prices and balance, an editable input while streaming, the cost after Stop, one announcement per reply", async () => {
  const user = await newUser(root, `chatter-${RUN}`, "3");
  const { ctx } = await signedIn(`chatter-${RUN}`, user.password);
  const { page } = await open(ctx, "/chat");
  assert.equal(await page.textContent("main h1"), "Chat");
  await page.selectOption("#chat-model", "mock-gpt");
  await page.waitForFunction(() => /Balance \$3\.00/.test(document.querySelector("#chat-account").textContent));
  assert.match(await page.textContent("#chat-account"), /mock-gpt: \$1\.00 input · \$2\.00 output per 1M tokens/);
  assert.equal(await page.getAttribute("#chat-log", "aria-live"), null, "the log itself is not live");

  const announcements = [];
  await page.exposeFunction("__announce", (text) => announcements.push(text));
  await page.evaluate(() => new MutationObserver(() => window.__announce(document.getElementById("chat-status").textContent))
    .observe(document.getElementById("chat-status"), { childList: true, characterData: true, subtree: true }));
  await page.fill("#chat-input", "a long answer please");
  await page.click("#chat-send");
  await page.waitForFunction(() => document.querySelector("#chat-log li.assistant")?.textContent.length > 0);
  assert.equal(await page.isEditable("#chat-input"), true, "the next message can be written while streaming");
  await page.fill("#chat-input", "drafting the next one");
  await page.click("#chat-stop");
  await page.waitForFunction(() => /Stopped: \d+ prompt \+ \d+ completion tokens · \$0\.\d+ billed\./.test(document.querySelector("#chat-meter").textContent));
  assert.equal(await page.inputValue("#chat-input"), "drafting the next one");
  await page.click("#chat-send");
  await page.waitForFunction(() => {
    const all = document.querySelectorAll("#chat-log li.assistant");
    return all.length === 2 && !all[1].hasAttribute("aria-busy");
  });
  await until(() => announcements.some((a) => a.startsWith("Reply:")), "the reply is announced");
  const replies = announcements.filter((a) => a.startsWith("Reply:"));
  assert.equal(replies.length, 1, JSON.stringify(announcements));
  assert.match(replies[0], /You said: drafting the next one/);
  assert.ok(announcements.length <= 5, `announced ${announcements.length} times: ${JSON.stringify(announcements)}`);
  assertNoProblems();
  await ctx.close();
});

test("chat: a balance answer that arrives late does not put back the prices of the model chosen before", async () => {
  const user = await newUser(root, `late-${RUN}`, "4");
  const { ctx } = await signedIn(`late-${RUN}`, user.password);
  const page = await ctx.newPage();
  page.on("pageerror", (e) => problems.push(`/chat: ${e.message}`));
  // The page's first /api/me (asked with the default model chosen) answers after the
  // one the model change asks.
  let asked = 0;
  await page.route("**/api/me", async (route) => {
    if (++asked === 1) await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.goto(`${BASE}/chat`);
  await page.waitForFunction(() => document.querySelector("#chat-model option[value='mock-gpt']"));
  await page.selectOption("#chat-model", "mock-gpt");
  await page.waitForFunction(() => /Balance \$4\.00/.test(document.querySelector("#chat-account").textContent));
  await until(() => asked >= 2, "both balance requests were asked");
  await page.waitForTimeout(2000);
  assert.match(await page.textContent("#chat-account"), /mock-gpt: \$1\.00 input · \$2\.00 output per 1M tokens/);
  assertNoProblems();
  await ctx.close();
});
