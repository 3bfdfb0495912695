// The web app in headless Chromium against a live gateway (scripts/web-tests.sh starts
// it with mock-upstream streaming 8 pieces 150 ms apart, and a paid and a free model).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { BASE, MOCK, ROOT_PASSWORD, XSS_MODEL, XSS_PROVIDER, problems, context, open, screenshots, assertNoProblems, apiLogin, eventually } from "./support.mjs";

const run = promisify(execFile);

test("the docs and pricing pages list the live catalogue", async () => {
  const ctx = await context();
  const { page, response } = await open(ctx, "/");
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-security-policy"], /script-src 'self'/);
  assert.equal(await page.textContent("#base-url"), `${BASE}/v1/`);
  // The seed page's columns (name, provider, context, input price), built-in models
  // first; only the configured models (test_fixes.mjs may have added its own by now).
  const configured = ["mock-free", "mock-gpt", "tokenhub-demo"];
  const rows = (await page.$$eval("#model-table tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)))).filter((r) => configured.includes(r[0]));
  assert.deepEqual(rows, [
    ["tokenhub-demo", "TokenHub", "8K", "Free"],
    ["mock-free", "Mock", "4K", "Free"],
    ["mock-gpt", "Mock", "8K", "$1.00"],
  ]);
  assert.match(await page.textContent("#code-python"), new RegExp(`base_url="${BASE}/v1/"`));
  for (const sample of ["#code-python", "#code-node", "#code-curl"]) {
    assert.ok(await page.isVisible(sample), sample);
    assert.match(await page.textContent(sample), /stream/i, `${sample} streams`);
  }
  await screenshots(page, "docs");

  const pricing = (await open(ctx, "/pricing")).page;
  const all = await pricing.$$eval("#price-table tbody tr", (trs) => trs.length);
  assert.equal(await pricing.textContent("#price-count"), `${all} models`);
  await pricing.check('input[name="free"]');
  const visible = await pricing.$$eval("#price-table tbody tr:not([hidden])", (trs) =>
    trs.map((tr) => [tr.cells[0].textContent, tr.cells[3].textContent, tr.cells[5].textContent]),
  );
  assert.ok(visible.some(([id]) => id === "mock-free"));
  assert.ok(visible.every(([, input, output]) => input === "Free" && output === "Free"), JSON.stringify(visible));
  assert.equal(await pricing.textContent("#price-count"), `${visible.length} model${visible.length === 1 ? "" : "s"}`);
  await pricing.uncheck('input[name="free"]');
  await pricing.selectOption('select[name="provider"]', "Mock");
  const mockRows = await pricing.$$eval("#price-table tbody tr:not([hidden]) td:first-child", (tds) => tds.map((td) => td.textContent));
  assert.deepEqual(mockRows, ["mock-free", "mock-gpt"]);
  await pricing.selectOption('select[name="provider"]', "");
  await pricing.click("#price-table th:nth-child(4) button");
  await pricing.click("#price-table th:nth-child(4) button");
  assert.equal(await pricing.getAttribute("#price-table th:nth-child(4)", "aria-sort"), "descending");
  const inputs = await pricing.$$eval("#price-table tbody td:nth-child(4)", (tds) => tds.map((td) => Number(td.dataset.sort)));
  assert.deepEqual(inputs, [...inputs].sort((a, b) => b - a));
  await screenshots(pricing, "pricing");
  assertNoProblems();
  await ctx.close();
});

test("a visitor signs up, creates a key, calls the API with curl and sees the request", async () => {
  const ctx = await context();
  const { page } = await open(ctx, "/token/");
  await screenshots(page, "token-signed-out");
  await page.click("#tab-signup");
  await page.fill("#signup-form input[name=username]", "webuser");
  await page.fill("#signup-form input[name=password]", "webuser-password");
  await Promise.all([page.waitForNavigation(), page.click("#signup-form button[type=submit]")]);
  await page.waitForSelector("#keys-table");
  assert.equal(await page.textContent("#balance"), "$1.00");

  await page.fill("#key-form input[name=name]", "laptop <b>");
  await page.check('#key-form input[name="models"][value="mock-gpt"]');
  await page.click("#key-form button[type=submit]");
  const secret = (await page.textContent("#new-key-secret")).trim();
  assert.match(secret, /^sk-[A-Za-z0-9_-]{20,}$/);
  assert.match(await page.textContent("#keys-table"), /laptop <b>/);

  const { stdout } = await run("curl", [
    "-sS", "--max-time", "20", `${BASE}/v1/chat/completions`,
    "-H", `Authorization: Bearer ${secret}`, "-H", "Content-Type: application/json",
    "-d", JSON.stringify({ model: "mock-gpt", messages: [{ role: "user", content: "hi from curl" }] }),
  ]);
  const completion = JSON.parse(stdout);
  assert.equal(completion.choices[0].message.content, "Hello from mock-upstream! You said: hi from curl");

  // A page from another origin (the mock's) calls /v1 with the key: CORS preflight and
  // answer, with the cost header exposed to the page.
  const foreign = await ctx.newPage();
  await foreign.goto(MOCK + "/mock/journal");
  const fromPage = await foreign.evaluate(async ([base, key]) => {
    const r = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json", "x-stainless-os": "Linux" },
      body: JSON.stringify({ model: "mock-gpt", messages: [{ role: "user", content: "hi from a page" }] }),
    });
    return { status: r.status, cost: r.headers.get("x-tokenhub-cost-usd"), body: await r.json() };
  }, [BASE, secret]);
  assert.equal(fromPage.status, 200);
  assert.equal(fromPage.body.choices[0].message.content, "Hello from mock-upstream! You said: hi from a page");
  assert.equal(String(fromPage.body.usage.cost), fromPage.cost, "x-tokenhub-cost-usd is readable by the page");
  await foreign.close();

  await eventually(page, async () => {
    await page.waitForSelector("#usage-table");
    const usage = await page.textContent("#usage-table tbody");
    assert.match(usage, /mock-gpt/);
    assert.match(usage, /200/);
  }, "the request did not appear in the usage table");
  assert.notEqual(await page.textContent("#balance"), "$1.00", "the request was billed");
  await screenshots(page, "token-console");

  // Signed in, the docs samples carry the key's prefix.
  const docs = (await open(ctx, "/")).page;
  assert.match(await docs.textContent("#code-python"), new RegExp(secret.slice(0, 7)));
  assert.equal(await docs.isVisible("header nav a[href='/admin']"), false, "no admin link for users");
  const forbidden = await open(ctx, "/admin");
  assert.equal(forbidden.response.status(), 403);
  assert.match(await forbidden.page.textContent("main"), /Admins only/);
  const expected = problems.findIndex((p) => p.startsWith("/admin:") && p.includes("403"));
  if (expected >= 0) problems.splice(expected, 1);
  assertNoProblems();

  await ctx.close();
});

test("an admin creates a channel and a model and the docs table shows them", async () => {
  const ctx = await context();
  const anonymous = await open(ctx, "/admin");
  assert.match(anonymous.page.url(), /\/token\/\?next=\/admin$/);
  const page = anonymous.page;
  await page.fill("#login-form input[name=username]", "root");
  await page.fill("#login-form input[name=password]", ROOT_PASSWORD);
  await Promise.all([page.waitForURL(`${BASE}/admin`), page.click("#login-form button[type=submit]")]);
  await page.waitForSelector("#admin-tab-dashboard");
  await screenshots(page, "admin-dashboard");

  await page.click("#admin-tab-channels");
  await page.fill("#channel-form [name=name]", "web-mock");
  await page.selectOption("#channel-form [name=type]", "openai");
  await page.fill("#channel-form [name=base_url]", MOCK);
  await page.fill("#channel-form [name=api_key]", "web-secret-key");
  await page.fill("#channel-form [name=models]", "web-model");
  await page.click("#channel-form [type=submit]");
  await page.waitForFunction(() => document.querySelector("#channels-table")?.textContent.includes("web-mock"));
  assert.doesNotMatch(await page.textContent("#channels-table"), /web-secret-key/, "keys are masked");
  await screenshots(page, "admin-channels");

  await page.click("#admin-tab-models");
  await page.fill("#model-form [name=id]", "web-model");
  await page.fill("#model-form [name=provider]", "WebCo");
  await page.fill("#model-form [name=context]", "32000");
  await page.fill("#model-form [name=input_usd_per_mtok]", "3");
  await page.fill("#model-form [name=output_usd_per_mtok]", "15");
  await page.click("#model-form [type=submit]");
  await page.waitForFunction(() => document.querySelector("#models-table")?.textContent.includes("web-model"));
  await screenshots(page, "admin-models");

  const docs = (await open(ctx, "/")).page;
  await eventually(docs, async () => {
    const rows = await docs.$$eval("#model-table tbody tr", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    assert.deepEqual(rows.find((r) => r[0] === "web-model"), ["web-model", "WebCo", "32K", "$3.00"]);
  }, "the new model did not appear on the docs page");
  await page.click("#admin-tab-catalogue");
  await page.waitForSelector("#catalogue-table tbody tr[data-model-id]");
  await page.fill("#catalogue-search", "web-model");
  assert.equal(await page.$$eval("#catalogue-table tbody tr[data-model-id]:not([hidden])", (trs) => trs.length), 1);
  await page.fill("#catalogue-search", "");
  await page.selectOption("#catalogue-served", "yes");
  const servedRows = await page.$$eval("#catalogue-table tbody tr[data-model-id]:not([hidden])", (trs) => trs.map((tr) => tr.dataset.served));
  assert.ok(servedRows.length > 0 && servedRows.every((s) => s === "yes"), JSON.stringify(servedRows));
  await screenshots(page, "admin-catalogue");
  for (const tab of ["users", "codes", "usage", "audit", "settings"]) {
    await page.click(`#admin-tab-${tab}`);
    await page.waitForFunction((name) => {
      const panel = document.getElementById(`admin-panel-${name}`);
      return !panel.hidden && !panel.hasAttribute("aria-busy") && !panel.textContent.startsWith("Loading");
    }, tab);
    await screenshots(page, `admin-${tab}`);
  }
  assertNoProblems();
  await ctx.close();
});

test("the chat streams a reply token by token", async () => {
  const ctx = await context();
  const { page } = await open(ctx, "/chat");
  assert.equal(await page.getAttribute('#chat-model option[value="mock-gpt"]', "disabled"), "", "paid models need an account");
  await page.selectOption("#chat-model", "mock-free");
  await page.fill("#chat-input", "stream please");
  // Every text the reply shows, recorded in the page as it changes.
  await page.evaluate(() => {
    window.__states = [];
    new MutationObserver(() => {
      const text = document.querySelector("#chat-log li.assistant")?.textContent;
      if (text !== undefined && window.__states.at(-1) !== text) window.__states.push(text);
    }).observe(document.getElementById("chat-log"), { childList: true, characterData: true, subtree: true });
  });
  await page.click("#chat-send");
  await page.waitForSelector("#chat-log li.assistant");
  assert.ok(await page.isVisible("#chat-stop"), "the stop button shows while streaming");
  await page.waitForSelector("#chat-log li.assistant:not([aria-busy])");
  const states = await page.evaluate(() => window.__states);
  const final = "Hello from mock-upstream! You said: stream please";
  assert.equal(states.at(-1), final);
  const partial = states.filter((s) => s && s !== final);
  assert.ok(partial.length >= 3, `saw only ${partial.length} intermediate states: ${JSON.stringify(states)}`);
  for (const s of partial) assert.ok(final.startsWith(s), `"${s}" is not a prefix of the reply`);
  assert.match(await page.textContent("#chat-meter"), /\d+ prompt \+ \d+ completion tokens · \$0/);
  await screenshots(page, "chat");
  assertNoProblems();
  await ctx.close();
});

test("markup in a model name and a chat message renders as text", async () => {
  const root = await apiLogin("root", ROOT_PASSWORD);
  await root("POST", "/api/admin/models", {
    id: XSS_MODEL, provider: XSS_PROVIDER, context: 1000, input_usd_per_mtok: "0", output_usd_per_mtok: "0",
  });
  const channels = await root("GET", "/api/admin/channels");
  const mock = channels.data.find((c) => c.name === "mock");
  await root("PATCH", `/api/admin/channels/${mock.id}`, { models: [...mock.models, XSS_MODEL] });

  const ctx = await context();
  for (const path of ["/", "/pricing"]) {
    const { page } = await open(ctx, path);
    const table = path === "/" ? "#model-table" : "#price-table";
    await eventually(page, async () => assert.match(await page.textContent(table), /onerror=window\.__xss=1/), `${path} lacks the model`);
    assert.ok((await page.textContent(table)).includes(XSS_PROVIDER));
    assert.equal(await page.$$eval(`${table} img, ${table} script`, (n) => n.length), 0);
    assert.equal(await page.evaluate(() => window.__xss), undefined);
  }

  const { page } = await open(ctx, "/chat");
  await eventually(page, async () => assert.ok(await page.$(`#chat-model option[value="${XSS_MODEL}"]`)), "chat lacks the model");
  await page.selectOption("#chat-model", "mock-free");
  const payload = '<img src=x onerror="window.__xss=3"> **bold** [x](javascript:alert(1))';
  await page.fill("#chat-input", payload);
  await page.click("#chat-send");
  await page.waitForFunction(() => {
    const li = document.querySelector("#chat-log li.assistant");
    return li && !li.hasAttribute("aria-busy");
  });
  assert.equal(await page.textContent("#chat-log li.user"), payload);
  const reply = await page.$eval("#chat-log li.assistant", (li) => ({
    text: li.textContent, imgs: li.querySelectorAll("img").length, strong: li.querySelector("strong")?.textContent, links: li.querySelectorAll("a").length,
  }));
  assert.match(reply.text, /<img src=x onerror="window.__xss=3">/);
  assert.deepEqual([reply.imgs, reply.strong, reply.links], [0, "bold", 0]);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assertNoProblems();
  await ctx.close();
});
