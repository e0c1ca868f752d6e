// Times the console's views against a running server, in headless Chromium: each view's first
// render (a fresh page load until the view is drawn) and a page turn, several times each;
// prints the median and the slowest. Used by bench/console.sh.
//
//   node bench/console.mjs http://127.0.0.1:7420
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const { chromium } = createRequire(join(root, "tests", "browser", "package.json"))("playwright-core");
const url = process.argv[2];
const ROUNDS = Number(process.env.ROUNDS || 7);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
const drawn = () => page.waitForFunction(() => location.hash && document.querySelector("main").dataset.ready === location.hash, null, { timeout: 120000 });

async function time(action) {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

async function open(hash) {
  await page.goto("about:blank");
  await page.goto(`${url}/console/${hash}`);
  await drawn();
}

// Next page of the main listing: done when the page number changes.
async function nextPage() {
  const label = await page.locator(".pager span").first().innerText();
  await page.locator(".pager button", { hasText: "Next page" }).first().click();
  await page.waitForFunction((before) => document.querySelector(".pager span")?.textContent !== before && !document.querySelector("main p.muted")?.textContent.startsWith("Loading"), label, { timeout: 120000 });
}

function report(name, samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  console.log(`${name.padEnd(44)} median ${median.toFixed(0).padStart(5)} ms   slowest ${sorted.at(-1).toFixed(0).padStart(5)} ms   (${samples.length} runs)`);
}

async function measure(name, before, action) {
  const samples = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    if (before) await before();
    samples.push(await time(action));
  }
  report(name, samples);
}

const health = await (await fetch(`${url}/healthz`)).json();
const roots = await (await fetch(`${url}/v1/accounts?roots=true&limit=1`)).json();
const some = roots.accounts[0].id;
const middle = Math.floor(health.last_seq / 2);
console.log(`ledger: ${health.accounts} accounts, ${health.transfer_records} transfer records, last seq ${health.last_seq}`);

await open("#/accounts");
await measure("accounts: first render (roots, 50)", null, () => open("#/accounts"));
await measure("accounts: page turn", () => open("#/accounts"), nextPage);
await measure("accounts: page turn, 10 pages in", async () => {
  await open("#/accounts");
  for (let n = 0; n < 10; n += 1) await nextPage();
}, nextPage);
await measure(`accounts as of seq ${middle}: first render`, null, () => open(`#/accounts?as_of=${middle}`));
await measure(`accounts as of seq ${middle}: page turn`, () => open(`#/accounts?as_of=${middle}`), nextPage);
const prefix = some.slice(0, some.length - 2);
await measure(`accounts by prefix ${prefix}: first render`, null, () => open(`#/accounts?prefix=${encodeURIComponent(prefix)}`));
await measure(`account ${some}: first render (with chart)`, null, () => open(`#/account/${encodeURIComponent(some)}`));
await measure("journal: first render (last 50 entries)", null, () => open("#/journal"));
await measure("holds: first render", null, () => open("#/holds"));
await measure("health: first render", null, () => open("#/health"));
await browser.close();
