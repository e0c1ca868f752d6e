// The console in a real browser: headless Chromium (Debian's package) driven by
// playwright-core, against real `tally serve` processes with seeded ledgers. Each view is
// checked against the API's own answers, and photographed into docs/console/ for
// docs/console.md.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const tally = process.env.TALLY_BIN || join(root, "target", "debug", "tally");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shots = join(root, "docs", "console");
// Generous bounds on waiting for the browser or the server: these are not timing checks.
const PATIENCE_MS = 30000;

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function until(what, check) {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > PATIENCE_MS) throw new Error(`gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// A `tally serve` on a free port and a fresh data directory, stopped after the tests.
class Server {
  static async start({ keys = false } = {}) {
    const directory = mkdtempSync(join(tmpdir(), "tally-console-"));
    const data = join(directory, "data");
    const server = new Server();
    server.directory = directory;
    if (keys) {
      const make = (scope, ...more) => execFileSync(tally, ["keys", "create", "--scope", scope, "--data-dir", data, ...more], { encoding: "utf8" }).split("\n")[0].trim();
      server.keys = { admin: make("admin"), write: make("write"), read: make("read"), tenant: make("write", "--accounts", "acme:") };
    }
    server.port = await freePort();
    server.url = `http://127.0.0.1:${server.port}`;
    server.log = "";
    server.process = spawn(tally, ["serve", "--listen", `127.0.0.1:${server.port}`, "--data-dir", data], { env: { ...process.env, RUST_LOG: "warn" } });
    server.process.stderr.on("data", (chunk) => { server.log += chunk; });
    await until("the server to start", async () => {
      try {
        const response = await fetch(`${server.url}/v1/whoami`, { headers: server.headers(server.keys && server.keys.admin) });
        return response.ok;
      } catch {
        return false;
      }
    });
    return server;
  }

  headers(key) {
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  async call(method, path, body, key = this.keys && this.keys.admin) {
    const response = await fetch(`${this.url}${path}`, { method, headers: this.headers(key), body: body === undefined ? undefined : JSON.stringify(body) });
    const answer = await response.json();
    return { status: response.status, answer };
  }

  async get(path) {
    const { status, answer } = await this.call("GET", path);
    assert.equal(status, 200, `${path}: ${JSON.stringify(answer)}`);
    return answer;
  }

  async post(path, body) {
    const { status, answer } = await this.call("POST", path, body);
    assert.equal(status, 200, `${path}: ${JSON.stringify(answer)}`);
    return answer.results;
  }

  async stop() {
    this.process.kill("SIGTERM");
    await new Promise((resolve) => this.process.once("exit", resolve));
    rmSync(this.directory, { recursive: true, force: true });
  }
}

// A small ledger with a tree, bounds, holds, an allocation and a history.
async function seed(server) {
  await server.post("/v1/assets", { code: "USD", scale: 2 });
  await server.post("/v1/accounts", { accounts: [
    { id: "world", asset: "USD", min_balance: null },
    { id: "org", asset: "USD", min_balance: null, max_balance: "10000.00", metadata: { team: "all" } },
    { id: "org:eng", asset: "USD", parent: "org", min_balance: null },
    { id: "org:ops", asset: "USD", parent: "org", min_balance: null },
    { id: "org:eng:alice", asset: "USD", parent: "org:eng", max_balance: "500.00" },
    { id: "bob", asset: "USD" },
    { id: "carol", asset: "USD" },
    { id: "pool", asset: "USD", min_balance: null },
    ...Array.from({ length: 55 }, (_, n) => ({ id: `pool:${String(n).padStart(2, "0")}`, asset: "USD", parent: "pool" })),
  ] });
  await server.post("/v1/transfers", { transfers: [
    { id: "fund-alice", debit: "world", credit: "org:eng:alice", amount: "120.00" },
    { id: "fund-bob", debit: "world", credit: "bob", amount: "75.50" },
  ] });
  await server.post("/v1/transfers", { transfers: [{ id: "lunch", debit: "org:eng:alice", credit: "bob", amount: "12.34", metadata: { note: "team lunch" } }] });
  await server.post("/v1/transfers", { transfers: [{ id: "budget", debit: "world", credit: "org:ops", amount: "300.00" }] });
  await server.post("/v1/transfers", { transfers: [
    { id: "rent-hold", debit: "bob", credit: "carol", amount: "20.00", pending: true, timeout_ms: 3600000 },
    { id: "deposit-hold", debit: "bob", credit: "carol", amount: "5.00", pending: true },
    { id: "split", debit: "world", allocate: [{ credit: "bob", weight: 1 }, { credit: "carol", weight: 2 }], amount: "10.00" },
  ] });
}

let server;
let browser;
let page;
let console_errors = [];

// Loads the console afresh (a new document, not a hash change) at `hash`.
async function open(hash) {
  await page.goto("about:blank");
  await page.goto(`${server.url}/console/${hash}`);
  await settled();
}

// Waits until the view for the current location is drawn.
async function settled(tab = page) {
  await tab.waitForFunction(() => location.hash && document.querySelector("main").dataset.ready === location.hash, null, { timeout: PATIENCE_MS });
}

async function visit(hash) {
  await page.evaluate((target) => { location.hash = target; }, hash);
  await settled();
}

async function shoot(name) {
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: false });
}

const card = (field) => page.locator(`.card[data-field="${field}"] .value`).innerText();

before(async () => {
  server = await Server.start();
  await seed(server);
  browser = await chromium.launch({
    executablePath: browserPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: "light" });
  page = await context.newPage();
  page.on("pageerror", (error) => console_errors.push(error.message));
  page.on("console", (message) => { if (message.type() === "error") console_errors.push(message.text()); });
});

after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test("the console is served from the binary, with a strict content policy", async () => {
  const response = await fetch(`${server.url}/console/`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-security-policy"), /script-src 'self'/);
  const vendored = await (await fetch(`${server.url}/console/vendor/uPlot.iife.min.js`)).text();
  const pinned = readFileSync(join(here, "node_modules", "uplot", "dist", "uPlot.iife.min.js"), "utf8");
  assert.equal(vendored, pinned, "the vendored uPlot is the pinned package's file: run tests/browser/vendor.sh");
  assert.equal((await fetch(`${server.url}/console/nothing.js`)).status, 404);
});

test("accounts: the trees' roots with their balances, and children on demand", async () => {
  await open("#/accounts");
  const rows = page.locator("#accounts-table tbody tr");
  const ids = await rows.evaluateAll((all) => all.map((row) => row.dataset.account));
  const roots = (await server.get("/v1/accounts?roots=true")).accounts;
  assert.deepEqual(ids, roots.map((account) => account.id));
  for (const account of roots) {
    const cells = await page.locator(`#accounts-table tr[data-account="${account.id}"] td`).allInnerTexts();
    assert.equal(cells[2], account.balance, `${account.id} balance`);
    assert.equal(cells[3], account.available, `${account.id} available`);
  }
  await page.getByRole("button", { name: "children of org", exact: true }).click();
  await page.waitForSelector('tr[data-account="org:eng"]');
  await page.getByRole("button", { name: "children of org:eng", exact: true }).click();
  await page.waitForSelector('tr[data-account="org:eng:alice"]');
  const alice = await server.get("/v1/accounts/org:eng:alice");
  const cells = await page.locator('tr[data-account="org:eng:alice"] td').allInnerTexts();
  assert.equal(cells[2], alice.balance);
  assert.match(cells[6], /%/, "an account with two bounds shows how full it is");
  await shoot("accounts");
  await page.getByRole("button", { name: "children of org", exact: true }).click();
  assert.equal(await page.locator('tr[data-account="org:eng:alice"]').count(), 0, "collapsing hides the whole subtree");
  await open("#/accounts?prefix=org:");
  const listed = await page.locator("#accounts-table tbody tr").evaluateAll((all) => all.map((row) => row.dataset.account));
  assert.deepEqual(listed, ["org:eng", "org:eng:alice", "org:ops"]);
});

test("accounts: a parent with more children than a page shows them a page at a time, and folds them all away", async () => {
  await open("#/accounts");
  const children = () => page.locator('#accounts-table tr[data-depth="1"][data-account]').count();
  await page.getByRole("button", { name: "children of pool", exact: true }).click();
  await page.waitForSelector('tr[data-more="pool"]');
  assert.equal(await children(), 50);
  await page.getByRole("button", { name: "children of pool:00", exact: true }).click();
  await page.waitForFunction(() => document.querySelector('button[aria-label="children of pool:00"]').textContent === "·");
  await page.getByRole("button", { name: "More children of pool" }).click();
  await page.waitForFunction(() => !document.querySelector('tr[data-more="pool"]'));
  assert.equal(await children(), 55);
  const order = await page.locator("#accounts-table tbody tr").evaluateAll((rows) => rows.map((row) => row.dataset.account));
  const pool = order.indexOf("pool");
  assert.deepEqual(order.slice(pool, pool + 57), ["pool", ...Array.from({ length: 55 }, (_, n) => `pool:${String(n).padStart(2, "0")}`), "world"]);
  await page.getByRole("button", { name: "children of pool", exact: true }).click();
  assert.equal(await children(), 0);
  assert.deepEqual(await page.locator("#accounts-table tbody tr").evaluateAll((rows) => rows.map((row) => row.dataset.account)), ["bob", "carol", "org", "pool", "world"]);
});

test("an account: its balances, its history as a chart and a table, its transfers and children", async () => {
  await open("#/account/bob");
  const bob = await server.get("/v1/accounts/bob");
  for (const field of ["balance", "available", "debits_posted", "credits_posted", "debits_pending", "credits_pending"]) {
    assert.equal(await card(field), bob[field], field);
  }
  const history = await server.get("/v1/accounts/bob/history?limit=1000");
  await page.waitForSelector("#balance-chart");
  assert.equal(await page.locator("#balance-chart").getAttribute("data-points"), String(history.changes.length));
  const changeRows = await page.locator("h2:has-text('Changes') + div tbody tr").allInnerTexts();
  assert.equal(changeRows.length, history.changes.length);
  history.changes.forEach((change, index) => assert.ok(changeRows[index].includes(change.balance), `change ${index} shows its running balance ${change.balance}`));
  const transfers = await server.get("/v1/accounts/bob/transfers?limit=1000");
  await page.waitForSelector("h2:has-text('Transfers') + div tbody tr");
  assert.equal(await page.locator("h2:has-text('Transfers') + div tbody tr").count(), transfers.transfers.length);
  await shoot("account");
  await open("#/account/org");
  await page.waitForSelector("h2:has-text('Children') + div tbody tr");
  assert.deepEqual(await page.locator("h2:has-text('Children') + div tbody tr td:first-child").allInnerTexts(), ["org:eng", "org:ops"]);
});

test("time travel: every balance as it was at a journal position or a time", async () => {
  const lunch = await server.get("/v1/transfers/lunch");
  const before = lunch.seq - 1;
  const then = await server.get(`/v1/accounts/bob?as_of=${before}`);
  const now = await server.get("/v1/accounts/bob");
  assert.notEqual(then.balance, now.balance);
  await open("#/account/bob");
  await page.fill("#as-of-input", String(before));
  await page.press("#as-of-input", "Enter");
  await page.waitForFunction((seq) => location.hash.includes(`as_of=${seq}`), before);
  await settled();
  assert.equal(await card("balance"), then.balance);
  assert.equal(await page.locator("#balance-chart").getAttribute("data-points"), String((await server.get(`/v1/accounts/bob/history?limit=1000`)).changes.filter((c) => c.seq <= before).length));
  await visit(`#/accounts?as_of=${before}`);
  const cells = await page.locator('#accounts-table tr[data-account="bob"] td').allInnerTexts();
  assert.equal(cells[2], then.balance, "the accounts list re-renders at the position too");
  // A time: the position of the lunch transfer's own timestamp is the lunch transfer.
  const at = new Date(Math.floor(lunch.timestamp / 1e6) + 1).toISOString();
  const position = await server.get(`/v1/journal/position?at=${BigInt(Math.floor(lunch.timestamp / 1e6) + 1) * 1000000n}`);
  await page.fill("#as-of-input", at);
  await page.press("#as-of-input", "Enter");
  await page.waitForFunction((seq) => location.hash.includes(`as_of=${seq}`), position.seq);
  await settled();
  const afterLunch = await server.get(`/v1/accounts/bob?as_of=${position.seq}`);
  const row = await page.locator('#accounts-table tr[data-account="bob"] td').allInnerTexts();
  assert.equal(row[2], afterLunch.balance);
  await shoot("time-travel");
  await page.click("#as-of-clear");
  await page.waitForFunction(() => !location.hash.includes("as_of"));
  await settled();
});

test("a transfer: amounts, accounts, metadata; an allocation's legs", async () => {
  await open("#/transfer/lunch");
  const text = await page.locator("main").innerText();
  assert.ok(text.includes("12.34 USD") && text.includes("org:eng:alice") && text.includes("team lunch"), text);
  await open("#/transfer/split");
  const legs = await page.locator("#legs tbody tr").allInnerTexts();
  const expected = [await server.get("/v1/transfers/split/0"), await server.get("/v1/transfers/split/1")];
  assert.equal(legs.length, 2);
  expected.forEach((leg, index) => assert.ok(legs[index].includes(leg.amount) && legs[index].includes(leg.credit), legs[index]));
  await shoot("transfer");
});

test("holds: soonest to expire first, and a countdown that reaches expiry", async () => {
  await server.post("/v1/transfers", { transfers: [{ id: "brief-hold", debit: "bob", credit: "carol", amount: "1.00", pending: true, timeout_ms: 3000 }] });
  await open("#/holds");
  await page.waitForSelector("main tbody tr");
  const listed = await page.locator("main tbody tr td:first-child").allInnerTexts();
  assert.deepEqual(listed, (await server.get("/v1/holds")).holds.map((hold) => hold.id));
  assert.equal(listed[0], "brief-hold");
  await shoot("holds");
  await open("#/transfer/brief-hold");
  assert.match(await page.locator("#countdown").innerText(), /\d+s|due/);
  // Read-only: the console offers no post or void without a write key.
  assert.equal(await page.locator("#post-hold").count(), 0);
  await page.waitForFunction(() => document.querySelector(".state")?.textContent === "expired", null, { timeout: PATIENCE_MS });
  assert.equal((await server.get("/v1/transfers/brief-hold")).state, "expired");
});

test("the journal tails new entries as they commit, and filters them", async () => {
  await open("#/journal");
  await page.waitForFunction(() => document.getElementById("journal-status")?.textContent.startsWith("live"));
  const started = Date.now();
  const [made] = await server.post("/v1/transfers", { transfers: [{ id: "tip", debit: "bob", credit: "carol", amount: "2.00" }] });
  await page.waitForSelector(`#journal-rows tr[data-seq="${made.seq}"]`, { timeout: PATIENCE_MS });
  console.log(`# the journal tail showed a new transfer ${Date.now() - started} ms after it was made`);
  const top = await page.locator("#journal-rows tr").first().innerText();
  assert.ok(top.includes("tip") && top.includes("2.00"), top);
  await shoot("journal");
  await visit("#/journal?type=transfer&account=carol");
  await page.waitForFunction(() => document.getElementById("journal-status")?.textContent.startsWith("live"));
  const rows = await page.locator("#journal-rows tr").allInnerTexts();
  assert.ok(rows.length > 0 && rows.every((row) => row.includes("carol") && row.includes("transfer")), rows.join("\n"));
});

test("health: the writer's progress from the server's own samples", async () => {
  await open("#/health");
  assert.equal(await card("engine"), "embedded");
  await page.waitForSelector("#chart-rate canvas");
  await page.waitForSelector("#chart-commit canvas");
  const stats = await server.get("/v1/stats");
  assert.ok(Number(await card("last_seq")) <= stats.samples.at(-1).last_seq);
  await shoot("health");
});

test("search goes straight to an account or a transfer", async () => {
  await open("#/accounts");
  await page.keyboard.press("/");
  await page.keyboard.type("carol");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash.startsWith("#/account/carol"));
  await settled();
  assert.equal(await card("balance"), (await server.get("/v1/accounts/carol")).balance);
  await page.fill("#search-input", "lunch");
  await page.press("#search-input", "Enter");
  await page.waitForFunction(() => location.hash.startsWith("#/transfer/lunch"));
  await page.fill("#search-input", "no-such-thing");
  await page.press("#search-input", "Enter");
  await page.waitForFunction(() => document.getElementById("notice").textContent.includes("no-such-thing"));
});

test("keyboard: views by number, rows by j/k, Enter opens", async () => {
  await open("#/accounts");
  await page.keyboard.press("2");
  await page.waitForFunction(() => location.hash === "#/holds");
  await settled();
  await page.waitForSelector("main tbody tr[data-href]");
  await page.keyboard.press("j");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => location.hash.startsWith("#/transfer/"));
});

test("dark theme and a phone's screen", async () => {
  await open("#/account/org:eng:alice");
  await page.click("#theme");
  await page.waitForFunction(() => document.documentElement.dataset.theme === "dark");
  await settled();
  await page.waitForSelector("#balance-chart canvas");
  await shoot("account-dark");
  await page.click("#theme");
  await page.setViewportSize({ width: 390, height: 844 });
  await open("#/accounts");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 390 + 1, `the page fits a phone's width (${width}px)`);
  await shoot("phone");
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("with keys: the console asks for one; a read key cannot post, a write key can, after confirming", async () => {
  const keyed = await Server.start({ keys: true });
  try {
    await keyed.call("POST", "/v1/assets", { code: "USD", scale: 2 });
    await keyed.call("POST", "/v1/accounts", { accounts: [
      { id: "payer", asset: "USD", min_balance: null }, { id: "payee", asset: "USD" },
      { id: "acme:payer", asset: "USD", min_balance: null }, { id: "acme:payee", asset: "USD" },
    ] });
    await keyed.call("POST", "/v1/transfers", { transfers: [
      { id: "h-read", debit: "payer", credit: "payee", amount: "3.00", pending: true },
      { id: "h-write", debit: "payer", credit: "payee", amount: "4.00", pending: true },
      { id: "acme:h", debit: "acme:payer", credit: "acme:payee", amount: "5.00", pending: true },
    ] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await context.newPage();
    await tab.goto(`${keyed.url}/console/#/transfer/h-read`);
    await tab.waitForSelector("#key-dialog[open]");
    await tab.fill("#key-input", keyed.keys.read);
    await tab.click("#key-form button[type=submit]");
    await settled(tab);
    await tab.waitForFunction(() => document.querySelector(".state")?.textContent === "pending");
    assert.equal(await tab.locator("#post-hold").count(), 0, "a read key is offered no post");
    assert.ok((await tab.locator("main").innerText()).includes("This key may only read."));
    // The server, not the console, is what refuses: the read key's own post is forbidden.
    const refused = await keyed.call("POST", "/v1/transfers", { transfers: [{ id: "sneaky", post: "h-read" }] }, keyed.keys.read);
    assert.equal(refused.status, 403);
    await tab.click("#key-button");
    await tab.fill("#key-input", keyed.keys.write);
    await tab.click("#key-form button[type=submit]");
    await tab.goto(`${keyed.url}/console/#/transfer/h-write`);
    await tab.waitForSelector("#post-hold");
    await tab.click("#post-hold");
    await tab.waitForSelector("#confirm-dialog[open]");
    await tab.click("#confirm-dialog button[value=cancel]");
    assert.equal((await keyed.call("GET", "/v1/transfers/h-write")).answer.state, "pending", "cancelling posts nothing");
    await tab.click("#post-hold");
    await tab.click("#confirm-yes");
    await tab.waitForFunction(() => document.querySelector(".state")?.textContent === "posted", null, { timeout: PATIENCE_MS });
    assert.equal((await keyed.call("GET", "/v1/transfers/h-write")).answer.state, "posted");
    assert.equal((await keyed.call("GET", "/v1/accounts/payee")).answer.balance, "4.00");
    // A key confined to acme: posts its own hold under an id of its own.
    await tab.click("#key-button");
    await tab.fill("#key-input", keyed.keys.tenant);
    await tab.click("#key-form button[type=submit]");
    await tab.goto(`${keyed.url}/console/#/transfer/acme:h`);
    await tab.waitForSelector("#post-hold");
    await tab.click("#post-hold");
    await tab.click("#confirm-yes");
    await tab.waitForFunction(() => document.querySelector(".state")?.textContent === "posted", null, { timeout: PATIENCE_MS });
    assert.match((await keyed.call("GET", "/v1/transfers/acme:h")).answer.resolved_by, /^acme:console-post-[0-9a-f]{24}$/);
    await context.close();
  } finally {
    await keyed.stop();
  }
});

test("no script errors in any view", () => {
  assert.deepEqual(console_errors.filter((message) => !message.includes("401") && !message.includes("404")), []);
});
