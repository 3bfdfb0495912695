// Every page in Simplified Chinese for a Chinese browser (Accept-Language zh-CN), the
// header's language switch (flips, remembered across reloads and pages), no English left
// in the interface, no JavaScript errors, and the 390 px checks and screenshots in both
// languages. Run by scripts/web-tests.sh after the other suites, against the same gateway.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { BASE, SHOTS, ROOT_PASSWORD, context, open, assertNoProblems, apiSession, signedIn, newUser, phoneProblems, problems, searchUsers, nextDialog } from "./support.mjs";

let root;
const RUN = Date.now().toString(36);
const ZH = { locale: "zh-CN" };

before(async () => {
  root = await apiSession("root", ROOT_PASSWORD);
});

/**
 * English words shown by the interface: visible text and placeholders / aria-labels,
 * leaving out data (table cells, code, chat replies, options listing models), what is
 * marked as English (the language switch) and the names that stay as they are in
 * Chinese (brands, protocols, units).
 */
async function englishLeft(page) {
  return page.evaluate(() => {
    const KEPT = new Set([
      "TokenHub", "API", "SMTP", "STARTTLS", "TLS", "OpenAI", "Anthropic", "Claude", "Code", "SDK", "Messages", "Base", "URL", "Server", "Sent", "Events",
      "SSE", "Chat", "Completions", "JSON", "CSV", "HTTP", "ID", "USD", "Token", "token", "tokens", "Authorization", "Bearer",
      "LiteLLM", "OpenRouter", "demo", "TTFT", "JavaScript", "Node", "Python", "curl", "POST", "GET", "IP", "WeChat", "sk",
    ]);
    // Data, and what is marked as another language (the switch's "English").
    const SKIP = "code, pre, td, option, datalist, script, style, svg, #chat-log, .who b, .user-open, .notice.error, [role=alert], [lang]:not([lang^=zh])";
    const words = (text) =>
      text
        .split(/\s+/)
        .map((token) => token.replace(/^[^A-Za-z]+|[^A-Za-z]+$/g, "").replace(/'s$/, ""))
        // Identifiers, paths and file names (a_b, x/y, a.json, mock-gpt) are data, not words.
        .filter((token) => /^[A-Za-z]{2,}$/.test(token) && !KEPT.has(token));
    const found = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const parent = node.parentElement;
      if (!parent || parent.closest(SKIP) || !parent.checkVisibility()) continue;
      for (const word of words(node.textContent)) found.add(`${word} (“${node.textContent.trim().slice(0, 60)}”)`);
    }
    for (const element of document.querySelectorAll("[placeholder], [aria-label], [title]")) {
      if (element.closest(SKIP) || !element.checkVisibility()) continue;
      for (const name of ["placeholder", "aria-label", "title"]) {
        const value = element.getAttribute(name);
        if (value) for (const word of words(value)) found.add(`${word} (${name} “${value.slice(0, 60)}”)`);
      }
    }
    return [...found];
  });
}

/** Chinese page checks: `<html lang>`, no English left, then 1280 and 390 px screenshots. */
async function checkChinese(page, name) {
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN", name);
  assert.deepEqual(await englishLeft(page), [], `${name}: English left in the Chinese page`);
  for (const [label, width, height] of [["desktop", 1280, 900], ["phone", 390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.waitForTimeout(100);
    if (label === "phone") assert.deepEqual(await phoneProblems(page), [], `${name} (zh)`);
    await page.screenshot({ path: `${SHOTS}/${name}-zh-${label}.png`, fullPage: true, timeout: 60_000 });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

test("a Chinese browser sees every visitor page in Chinese, with no English left and nothing off screen at 390 px", async () => {
  const ctx = await context(ZH);
  for (const [path, name, heading] of [
    ["/", "docs", "TokenHub API 文档"],
    ["/pricing", "pricing", "价格"],
    ["/chat", "chat", "聊天"],
    ["/token/", "token-signed-out", "控制台"],
    ["/no-such-page", "not-found", "页面未找到"],
  ]) {
    const { page } = await open(ctx, path);
    await page.waitForSelector("h1");
    assert.equal((await page.textContent("h1")).trim(), heading, path);
    await checkChinese(page, name);
    await page.close();
  }
  problems.splice(0).filter((p) => !p.includes("404")).forEach((p) => assert.fail(p));
  await ctx.close();
});

test("in Chinese the console, the chat and the scripts' own messages are Chinese", async () => {
  const name = `zh-${RUN}`;
  const user = await newUser(root, name);
  const { ctx } = await signedIn(name, user.password, ZH);
  const { page } = await open(ctx, "/token/");
  await page.waitForSelector("#keys-table");
  assert.equal((await page.textContent("h1")).trim(), `你好，${name}`);
  // A message the script writes after an action: the new key's notice.
  await page.fill("#key-form [name=name]", "笔记本");
  await page.click("#key-form button[type=submit]");
  await page.waitForSelector("#new-key");
  assert.match(await page.textContent("#new-key"), /密钥“笔记本”已创建。\s*请立即复制/);
  await checkChinese(page, "token-console");
  const { page: chat } = await open(ctx, "/chat");
  await chat.waitForSelector("#chat-account:not([hidden])");
  assert.match(await chat.textContent("#chat-account"), /每百万 token 输入 .* · 余额 \$/);
  await checkChinese(chat, "chat-signed-in");
  assertNoProblems();
  await ctx.close();
});

test("in Chinese every admin tab is Chinese, with no English left and nothing off screen at 390 px", async () => {
  const { ctx } = await signedIn("root", ROOT_PASSWORD, ZH);
  const { page } = await open(ctx, "/admin#dashboard");
  await page.waitForSelector('[role="tab"][aria-selected="true"]');
  assert.equal(await page.textContent("#admin-tab-users"), "用户");
  for (const tab of ["dashboard", "channels", "models", "catalogue", "users", "keys", "codes", "usage", "audit", "settings"]) {
    await page.click(`#admin-tab-${tab}`);
    await page.waitForFunction((t) => {
      const panel = document.getElementById(`admin-panel-${t}`);
      return !panel.hasAttribute("aria-busy") && !panel.textContent.startsWith("加载中");
    }, tab);
    await checkChinese(page, `admin-${tab}`);
  }
  // A confirmation the script writes: crediting a user shows the balance before and after.
  const name = `zh-admin-${RUN}`;
  const user = await newUser(root, name);
  await page.click("#admin-tab-users");
  const row = await searchUsers(page, name, user.id);
  await page.fill(`${row} [name=amount]`, "1");
  await page.fill(`${row} [name=reason]`, "测试");
  const asked = nextDialog(page);
  await page.click(`${row} form.adjust button[type=submit]`);
  const question = await asked;
  assert.match(question, new RegExp(`^为 ${name} 充值 \\$1\\.00？\n余额 \\$5\\.00 → \\$6\\.00\n原因：测试$`));
  assertNoProblems();
  await ctx.close();
});

test("the header's switch flips the language, and the choice is remembered across reloads and pages", async () => {
  const ctx = await context();
  const { page } = await open(ctx, "/pricing");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal((await page.textContent("#lang-switch")).trim(), "中文");
  await Promise.all([page.waitForNavigation(), page.click("#lang-switch")]);
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  assert.equal((await page.textContent("h1")).trim(), "价格");
  await page.reload();
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN", "remembered across a reload");
  await page.goto(`${BASE}/token/#signup`);
  await page.waitForSelector("#auth");
  assert.equal((await page.textContent("h1")).trim(), "控制台", "remembered on other pages");
  assert.equal((await page.textContent("#lang-switch")).trim(), "English");
  await Promise.all([page.waitForNavigation(), page.click("#lang-switch")]);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  assert.equal(new URL(page.url()).hash, "#signup", "the switch keeps the page's place");
  await page.waitForSelector("#auth");
  assert.equal((await page.textContent("h1")).trim(), "Console");
  // A Chinese browser that chose English stays in English.
  const zh = await context(ZH);
  await zh.addCookies([{ name: "th_lang", value: "en", url: BASE }]);
  const { page: chosen } = await open(zh, "/");
  assert.equal(await chosen.getAttribute("html", "lang"), "en");
  assertNoProblems();
  await zh.close();
  await ctx.close();
});
