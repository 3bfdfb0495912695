// Accounts by email (#17) in Chromium: SMTP set in the admin panel with a test mail,
// password reset through a mailed link, and email verification at sign-up. Mail goes to
// a sink on loopback (support.mjs); links start with public_url (the gateway's own URL
// under scripts/web-tests.sh).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { BASE, ROOT_PASSWORD, problems, context, open, assertNoProblems, apiSession, signedIn, newUser, smtpSink, mailedLink } from "./support.mjs";

let root;
let sink;
const RUN = Date.now().toString(36);
const SENDER = "TokenHub <noreply@example.com>";

before(async () => {
  root = await apiSession("root", ROOT_PASSWORD);
  sink = await smtpSink();
});

after(async () => {
  // The suites after this one run without verification or the sink.
  await root("PATCH", "/api/admin/settings", { email_verification: false });
  await root("DELETE", "/api/admin/mail");
  sink.close();
});

test("an admin saves SMTP settings in the panel and sends a test email", async () => {
  const { ctx } = await signedIn("root", ROOT_PASSWORD);
  const { page } = await open(ctx, "/admin#settings");
  await page.waitForSelector("#mail-form");
  await page.fill("#mail-form [name=host]", "127.0.0.1");
  await page.fill("#mail-form [name=port]", String(sink.port));
  await page.selectOption("#mail-form [name=tls]", "none");
  await page.fill("#mail-form [name=from]", SENDER);
  await page.click("#mail-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#mail-source")?.textContent.includes("the server below"));
  await page.fill("#mail-test [name=to]", "ops@example.com");
  await page.click("#mail-test button[type=submit]");
  const mail = await sink.next();
  assert.match(mail, /To: ops@example.com/);
  assert.match(mail, /Subject: TokenHub test mail/);
  await page.waitForSelector("#mail-settings .notice.ok");
  assertNoProblems();
  await ctx.close();
});

test("a forgotten password is reset through the mailed link, then the new one logs in", async () => {
  const name = `forgetful-${RUN}`;
  const user = await newUser(root, name);
  const own = await apiSession(name, user.password);
  assert.equal((await own("PUT", "/api/me/email", { email: `${name}@example.com` })).status, 200);

  const ctx = await context();
  const { page } = await open(ctx, "/token/");
  await page.click("#forgot summary");
  await page.fill("#forgot-form [name=email]", `${name}@example.com`);
  await page.click("#forgot-form button[type=submit]");
  await page.waitForSelector("#forgot .notice.ok");
  const link = mailedLink(await sink.next(), "#reset=");
  assert.ok(link.startsWith(`${BASE}/token/#reset=thr_`), link);

  const { page: reset } = await open(ctx, link.slice(BASE.length));
  await reset.fill("#reset-form [name=password]", "brand-new-password");
  await reset.click("#reset-form button[type=submit]");
  await reset.waitForFunction(() => document.querySelector("#console > .notice.ok")?.textContent.includes("Password changed"));
  await reset.fill("#login-form [name=username]", name);
  await reset.fill("#login-form [name=password]", "brand-new-password");
  await reset.click("#login-form button[type=submit]");
  await reset.waitForFunction((n) => document.querySelector("#console h1")?.textContent === `Hello, ${n}`, name);
  assertNoProblems();
  await ctx.close();
});

test("under email verification a new account confirms its address before creating keys", async () => {
  assert.equal((await root("PATCH", "/api/admin/settings", { email_verification: true })).status, 200);
  const name = `verified-${RUN}`;
  const ctx = await context();
  const { page } = await open(ctx, "/token/#signup");
  await page.fill("#signup-form [name=username]", name);
  await page.fill("#signup-form [name=password]", `${name}-password`);
  await page.fill("#signup-form [name=email]", `${name}@example.com`);
  await page.click("#signup-form button[type=submit]");
  await page.waitForSelector("#verification-pending");
  assert.equal(await page.textContent("#balance"), "$0.00", "the trial waits for the confirmation");
  await page.fill("#key-form [name=name]", "too early");
  await page.click("#key-form button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#key-form .notice.error")?.textContent.includes("confirm your email address"));
  // Chromium logs the refused request (403) as a console error: expected here.
  const refusal = problems.findIndex((p) => p.includes("status of 403"));
  assert.ok(refusal >= 0, JSON.stringify(problems));
  problems.splice(refusal, 1);

  const link = mailedLink(await sink.next(), "#verify=");
  assert.ok(link.startsWith(`${BASE}/token/#verify=thv_`), link);
  const { page: confirmed } = await open(ctx, link.slice(BASE.length));
  await confirmed.waitForFunction(() => document.querySelector("#console > .notice.ok")?.textContent.includes("Email address confirmed"));
  await confirmed.waitForSelector("#keys-table, #key-form");
  assert.equal(await confirmed.$("#verification-pending"), null);
  assert.notEqual(await confirmed.textContent("#balance"), "$0.00", "the trial is credited");
  await confirmed.fill("#key-form [name=name]", "now allowed");
  await confirmed.click("#key-form button[type=submit]");
  await confirmed.waitForSelector("#new-key");
  assertNoProblems();
  await ctx.close();
});
