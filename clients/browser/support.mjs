// Helpers shared by the browser suites (test_web.mjs, test_fixes.mjs): one Chromium per
// suite file, pages that record console errors, screenshots, Node-side API sessions.
import { after, before } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { chromium } from "playwright-core";

export const BASE = process.env.TOKENHUB_WEB_URL;
export const MOCK = process.env.TOKENHUB_MOCK_URL;
export const ROOT_PASSWORD = process.env.TOKENHUB_ROOT_PASSWORD;
export const SHOTS = process.env.SCREENSHOT_DIR;
export const XSS_MODEL = "<img/src=x/onerror=window.__xss=1>";
export const XSS_PROVIDER = "<script>window.__xss=2</script>";

let browser;
/** Console errors and uncaught exceptions (CSP violations are console errors). */
export const problems = [];

before(async () => {
  assert.ok(BASE, "TOKENHUB_WEB_URL is not set: run scripts/web-tests.sh");
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await browser?.close();
});

/** A browser context; `locale` ("zh-CN") also sets the Accept-Language it sends. */
export async function context({ locale } = {}) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...(locale ? { locale } : {}) });
  ctx.setDefaultTimeout(10_000);
  return ctx;
}

export async function open(ctx, path) {
  const page = await ctx.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`${path}: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`${path}: ${e.message}`));
  const response = await page.goto(BASE + path);
  return { page, response };
}

export async function screenshots(page, name) {
  for (const [label, width, height] of [["desktop", 1280, 900], ["phone", 390, 844]]) {
    await page.setViewportSize({ width, height });
    await page.screenshot({ path: `${SHOTS}/${name}-${label}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

export function assertNoProblems() {
  const seen = problems.splice(0);
  assert.deepEqual(seen, [], "console errors or uncaught exceptions");
}

/** Logs in through the API; returns {cookie, csrf} for Node-side calls. */
export async function apiLogin(username, password) {
  const response = await fetch(`${BASE}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(response.status, 200);
  const cookie = response.headers.get("set-cookie").split(";")[0];
  const { csrf_token } = await response.json();
  return async (method, path, body) => {
    const reply = await fetch(BASE + path, {
      method,
      headers: { "Content-Type": "application/json", Cookie: cookie, "X-CSRF-Token": csrf_token },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const value = await reply.json();
    assert.ok(reply.ok, `${method} ${path}: ${reply.status} ${JSON.stringify(value)}`);
    return value;
  };
}

/** Reloads `page` until `check` passes (the gateway reloads its catalogue every 100 ms). */
export async function eventually(page, check, what) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${error.message}`);
      await new Promise((r) => setTimeout(r, 300));
      await page.reload();
    }
  }
}

/** Waits for `check` (run in Node) to return a truthy value: polled every 50 ms for 10 s. */
export async function until(check, what) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Logs in through the API; the returned call answers {status, body} whatever the status. */
export async function apiSession(username, password) {
  const response = await fetch(`${BASE}/api/auth/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username, password }),
  });
  assert.equal(response.status, 200, `login of ${username}`);
  const cookie = response.headers.get("set-cookie").split(";")[0];
  const { csrf_token } = await response.json();
  const call = async (method, path, body) => {
    const reply = await fetch(BASE + path, {
      method,
      headers: { "Content-Type": "application/json", Cookie: cookie, "X-CSRF-Token": csrf_token },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await reply.text();
    return { status: reply.status, body: text ? JSON.parse(text) : null };
  };
  call.cookie = cookie;
  return call;
}

/** A browser context already signed in as `username` (the session cookie set). */
export async function signedIn(username, password, options) {
  const call = await apiSession(username, password);
  const ctx = await context(options);
  const at = call.cookie.indexOf("=");
  await ctx.addCookies([{ name: call.cookie.slice(0, at), value: call.cookie.slice(at + 1), url: BASE }]);
  return { ctx, call };
}

/** Creates a user with a password and a balance (as root); returns its API session. */
export async function newUser(root, username, balance = "5") {
  const created = await root("POST", "/api/admin/users", { username, password: `${username}-password`, balance_usd: balance });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { id: created.body.id, password: `${username}-password` };
}

/**
 * Searches the admin Users tab for `name` and waits until the table holds that user's row
 * alone: until then the earlier listing is on screen, and its row is replaced (with what a
 * test typed into it) when the search answers. Returns the row's selector.
 */
export async function searchUsers(page, name, userId) {
  const row = `tr[data-user-id="${userId}"]`;
  await page.fill("#users-search [name=search]", name);
  await page.click("#users-search button[type=submit]");
  await page.waitForFunction((r) => {
    const rows = document.querySelectorAll("#users-table tbody tr");
    return rows.length === 1 && rows[0].matches(r);
  }, row);
  return row;
}

/** The next dialog's message, dismissed (or accepted); fails after 15 s rather than waiting for ever. */
export function nextDialog(page, { accept = false } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no dialog opened within 15 s")), 15_000);
    page.once("dialog", (dialog) => {
      clearTimeout(timer);
      resolve(dialog.message());
      (accept ? dialog.accept() : dialog.dismiss()).catch(() => {});
    });
  });
}

/**
 * A local SMTP sink on loopback for the account mail tests: `next()` resolves with the
 * next message the gateway sends (its DATA, dot-unstuffed). Enough for a plain relay.
 */
export async function smtpSink() {
  const received = [];
  const waiting = [];
  const deliver = (message) => (waiting.length ? waiting.shift()(message) : received.push(message));
  const server = createServer((socket) => {
    let buffer = "";
    let data = null;
    socket.write("220 sink ESMTP\r\n");
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      let end;
      while ((end = buffer.indexOf("\r\n")) >= 0) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data !== null) {
          if (line === ".") {
            deliver(data);
            data = null;
            socket.write("250 queued\r\n");
          } else data += (line.startsWith(".") ? line.slice(1) : line) + "\n";
          continue;
        }
        const verb = line.split(" ")[0].toUpperCase();
        if (verb === "EHLO") socket.write("250-sink\r\n250 8BITMIME\r\n");
        else if (verb === "DATA") {
          data = "";
          socket.write("354 end with .\r\n");
        } else if (verb === "QUIT") socket.end("221 bye\r\n");
        else socket.write("250 OK\r\n");
      }
    });
    socket.on("error", () => {});
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    next: () => (received.length ? Promise.resolve(received.shift()) : new Promise((resolve) => waiting.push(resolve))),
    close: () => server.close(),
  };
}

/** The first link in a mail that contains `marker` (`#reset=`, `#verify=`). */
export function mailedLink(message, marker) {
  const line = message.split("\n").find((l) => l.includes(marker));
  assert.ok(line, `no ${marker} link in ${message}`);
  return line.trim();
}

/**
 * At 390 px: the page does not scroll sideways, and in every visible table each cell of
 * a key column (price, cost, status, actions…, in English or Chinese) is either inside
 * the viewport or shown as a labelled card line. Returns the problems found.
 */
export async function phoneProblems(page) {
  return page.evaluate(() => {
    const found = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width) found.push(`the page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
    const key = /price|input|output|cached|cost|spend|spent|balance|amount|status|health|enabled|redeemed|expires|latency|tokens|价格|输入|输出|缓存|费用|消费|已用|余额|金额|状态|健康|启用|已兑换|过期|延迟|token|^$/i;
    for (const table of document.querySelectorAll("table")) {
      if (!table.offsetParent || table.closest("[hidden]")) continue;
      const labels = [...(table.tHead?.rows[0]?.cells || [])].map((th) => th.textContent.trim());
      for (const row of table.tBodies[0]?.rows || []) {
        if (row.hidden) continue;
        [...row.cells].forEach((cell, i) => {
          if (cell.colSpan > 1 || !key.test(labels[i] ?? "") || getComputedStyle(cell).display === "none") return;
          const box = cell.getBoundingClientRect();
          const inside = box.left >= 0 && box.right <= width + 0.5;
          const card = getComputedStyle(cell).display !== "table-cell" && (cell.dataset.label !== undefined || labels[i] === "");
          if (!inside && !card) found.push(`#${table.id || "?"} column "${labels[i]}" is off screen (${Math.round(box.left)}–${Math.round(box.right)})`);
          if (getComputedStyle(cell).display !== "table-cell" && labels[i] && cell.dataset.label !== labels[i]) found.push(`#${table.id || "?"} card line "${labels[i]}" has no label`);
        });
      }
    }
    return found;
  });
}
