// The Tally console: a read-mostly view of one ledger, served by `tally serve` at /console.
// No build step and no dependency but uPlot (charts). Every number shown comes from the API
// as a decimal string and is shown as that string: amounts are never turned into floats,
// except to place a point on a chart, whose labels still show the API's strings.

const PAGE = 50;
const HOLD_REFRESH_MS = 1000;
const JOURNAL_WAIT_MS = 25000;
const JOURNAL_ROWS_MAX = 500;
const HISTORY_CHART_PAGES_MAX = 5;
const LEGS_SHOWN_MAX = 100;
const STATS_REFRESH_MS = 2000;

const state = {
  key: sessionStorage.getItem("tally-key"),
  whoami: null,
  // Everything a view starts (timers, long polls) stops when the next view starts.
  view: new AbortController(),
};

// ---------------------------------------------------------------- the API

class ApiFailure extends Error {
  constructor(status, message, answer) {
    super(message);
    this.status = status;
    this.answer = answer;
  }
}

async function api(path, { method = "GET", body, signal } = {}) {
  const headers = {};
  if (state.key) headers.Authorization = `Bearer ${state.key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiFailure(0, `the server cannot be reached (${error.message})`);
  }
  const text = await response.text();
  let answer = null;
  try {
    answer = text ? JSON.parse(text) : null;
  } catch {
    answer = { error: { message: text } };
  }
  if (response.status === 401) {
    askForKey("This ledger needs an API key.");
  }
  if (!response.ok) {
    const error = (answer && answer.error) || {};
    throw new ApiFailure(response.status, error.message || `HTTP ${response.status}`, answer);
  }
  return answer;
}

const encode = (id) => encodeURIComponent(id);

// ---------------------------------------------------------------- small helpers

function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const main = () => document.getElementById("main");

function show(...children) {
  main().replaceChildren(...children);
}

function notice(text, isError = false) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.classList.toggle("error", isError);
  box.hidden = !text;
}

const aborted = (error) => error.name === "AbortError";

// Waits `ms`, or less if the view is left meanwhile.
function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

function failure(error) {
  if (aborted(error)) return null;
  return h("p", { class: "error", role: "alert" }, error.message);
}

// The route's query, and links that keep the time-travel position.
function currentQuery() {
  const hash = location.hash.slice(1);
  const at = hash.indexOf("?");
  return new URLSearchParams(at < 0 ? "" : hash.slice(at + 1));
}

function asOf() {
  const seq = currentQuery().get("as_of");
  return seq && /^\d+$/.test(seq) ? Number(seq) : null;
}

function href(path, query = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== undefined && value !== null && value !== "") params.set(name, value);
  const seq = asOf();
  if (seq !== null && !params.has("as_of")) params.set("as_of", String(seq));
  const text = params.toString();
  return `#${path}${text ? `?${text}` : ""}`;
}

const accountLink = (id) => (id ? h("a", { href: href(`/account/${encode(id)}`) }, id) : "");
const transferLink = (id) => (id ? h("a", { href: href(`/transfer/${encode(id)}`) }, id) : "");

// Timestamps are ns since the epoch, beyond a double's exact range: only ms are kept, for
// display; the API's own numbers are never sent back from here.
function time(ns) {
  if (ns === undefined || ns === null) return "";
  const date = new Date(Math.floor(Number(ns) / 1e6));
  return date.toISOString().replace("T", " ").replace("Z", " UTC");
}

function duration(ms) {
  if (ms <= 0) return "due";
  const seconds = Math.ceil(ms / 1000);
  const parts = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  const out = [];
  let left = seconds;
  for (const [size, unit] of parts) {
    if (left >= size || (unit === "s" && out.length === 0)) {
      out.push(`${Math.floor(left / size)}${unit}`);
      left %= size;
    }
    if (out.length === 2) break;
  }
  return out.join(" ");
}

// A decimal string as an exact integer of minor units, and the scale it was written with.
function minor(text) {
  const negative = text.startsWith("-");
  const digits = negative ? text.slice(1) : text;
  const [whole, fraction = ""] = digits.split(".");
  const value = BigInt(whole + fraction);
  return { value: negative ? -value : value, scale: fraction.length };
}

// How full an account is between its bounds: a fraction 0..1 with a level, or null when it
// has not two bounds. Computed on exact integers; only the final ratio is a float.
function fullness(account) {
  if (account.min_balance === null || account.max_balance === null) return null;
  const low = minor(account.min_balance).value;
  const high = minor(account.max_balance).value;
  const used = minor(account.balance).value + minor(account.credits_pending).value;
  if (high <= low) return null;
  const permille = Number(((used - low) * 1000n) / (high - low));
  const fraction = Math.min(1, Math.max(0, permille / 1000));
  return { fraction, level: fraction >= 0.95 ? "bad" : fraction >= 0.8 ? "warn" : "" };
}

// Headroom over the lower bound, exactly: available - min_balance.
function headroom(account) {
  if (account.min_balance === null) return "unbounded";
  const available = minor(account.available);
  const floor = minor(account.min_balance);
  const scale = Math.max(available.scale, floor.scale);
  const left = available.value * 10n ** BigInt(scale - available.scale) - floor.value * 10n ** BigInt(scale - floor.scale);
  const negative = left < 0n;
  const digits = (negative ? -left : left).toString().padStart(scale + 1, "0");
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

function meter(account) {
  const full = fullness(account);
  if (!full) {
    const left = headroom(account);
    return h("span", { class: "muted", title: "what can still be debited before min_balance" }, left === "unbounded" ? left : `${left} above min`);
  }
  const percent = Math.round(full.fraction * 100);
  const bar = h("span", { class: `meter ${full.level}`, role: "meter", "aria-valuenow": String(percent), "aria-valuemin": "0", "aria-valuemax": "100", title: `${percent}% of the way from min_balance to max_balance` });
  const fill = h("span");
  fill.style.width = `${percent}%`;
  bar.append(fill);
  return h("span", {}, bar, ` ${percent}%`);
}

function bounds(account) {
  const low = account.min_balance === null ? "-inf" : account.min_balance;
  const high = account.max_balance === null ? "+inf" : account.max_balance;
  return `${low} .. ${high}`;
}

// A column's cells are right-aligned numbers (`num`), or hidden on a narrow screen (`wide`).
const columnClass = (column) => [column.num ? "num" : "", column.wide ? "wide" : ""].join(" ").trim() || undefined;

// A table of `columns` with the rows in `body` (a tbody), scrolling sideways when too wide.
function tableOf(columns, body, id) {
  const head = h("tr", {}, columns.map((column) => h("th", { class: columnClass(column), scope: "col" }, column.title)));
  return h("div", { class: "table-wrap" }, h("table", { id }, h("thead", {}, head), body));
}

function table(columns, rows, rowHref) {
  return tableOf(columns, h("tbody", {}, rows.map((row) => tableRow(columns, row, rowHref))));
}

function tableRow(columns, row, rowHref) {
  const cells = columns.map((column) => h("td", { class: columnClass(column) }, column.cell(row)));
  const target = rowHref && rowHref(row);
  return h("tr", { dataset: target ? { href: target } : {} }, cells);
}

// Previous and next buttons for page `index`; `cursors` holds where each page known so far
// starts.
function pager(index, cursors, turn) {
  return h("div", { class: "pager" },
    h("button", { type: "button", disabled: index === 0, onclick: () => turn(index - 1) }, "Previous page"),
    h("button", { type: "button", disabled: cursors.length <= index + 1, onclick: () => turn(index + 1) }, "Next page"),
    h("span", { class: "muted" }, `page ${index + 1}`));
}

// A listing read page by page: `load(cursor)` answers { rows, next }; earlier cursors are
// kept so the reader can go back.
function pagedTable({ columns, load, rowHref, empty }) {
  const holder = h("div");
  const cursors = [null];
  const turn = async (index) => {
    holder.replaceChildren(h("p", { class: "muted" }, "Loading..."));
    try {
      const { rows, next } = await load(cursors[index]);
      cursors.length = index + 1;
      if (next !== null && next !== undefined) cursors.push(next);
      holder.replaceChildren(rows.length ? table(columns, rows, rowHref) : h("p", { class: "muted" }, empty), pager(index, cursors, turn));
    } catch (error) {
      holder.replaceChildren(failure(error) || "");
    }
  };
  turn(0);
  return holder;
}

function cards(entries) {
  return h("div", { class: "cards" }, entries.map(([label, value, name]) => h("div", { class: "card", dataset: name ? { field: name } : {} }, h("div", { class: "label" }, label), h("div", { class: "value" }, value))));
}

function stateBadge(value) {
  return h("span", { class: `state state-${value}` }, value);
}

function cssColor(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

// A time chart (uPlot) with one or more series; `labels[i][j]`, when given, is what the legend
// shows for series i at point j (the API's exact string rather than the plotted float).
function chart({ title, times, series, labels, height = 220 }) {
  const box = h("div", { class: "chart", role: "img", "aria-label": title }, h("h3", {}, title));
  const palette = [cssColor("--accent"), cssColor("--good"), cssColor("--warn")];
  const axis = { stroke: cssColor("--muted"), grid: { stroke: cssColor("--line") }, ticks: { stroke: cssColor("--line") } };
  const options = {
    width: 600,
    height,
    scales: { x: { time: true } },
    axes: [{ ...axis }, { ...axis, size: 70 }],
    series: [
      {},
      ...series.map((item, index) => ({
        label: item.label,
        stroke: palette[index % palette.length],
        width: 2,
        paths: item.stepped ? window.uPlot.paths.stepped({ align: 1 }) : undefined,
        value: labels && labels[index] ? (_, value, __, point) => (point === null || point === undefined ? "--" : labels[index][point]) : undefined,
      })),
    ],
  };
  const plot = new window.uPlot(options, [times, ...series.map((item) => item.values)], box);
  const fit = () => plot.setSize({ width: Math.max(260, box.clientWidth - 16), height });
  new ResizeObserver(fit).observe(box);
  box.plot = plot;
  return box;
}

// ---------------------------------------------------------------- views

const views = {
  accounts: accountsView,
  account: accountView,
  transfer: transferView,
  holds: holdsView,
  journal: journalView,
  health: healthView,
};

function accountColumns(depthOf) {
  return [
    {
      title: "Account",
      cell: (account) => {
        const depth = depthOf ? depthOf(account) : 0;
        const indent = h("span", { class: "indent" });
        indent.style.width = `${depth * 1.2}em`;
        return h("span", {}, indent, account.toggle || "", accountLink(account.id), account.closed ? h("span", { class: "closed" }, "closed") : "");
      },
    },
    { title: "Asset", cell: (a) => a.asset, wide: true },
    { title: "Balance", num: true, cell: (a) => (a.missing ? "did not exist" : a.balance) },
    { title: "Available", num: true, cell: (a) => (a.missing ? "" : a.available) },
    { title: "Pending (dr / cr)", num: true, wide: true, cell: (a) => (a.missing ? "" : `${a.debits_pending} / ${a.credits_pending}`) },
    { title: "Bounds", num: true, wide: true, cell: (a) => bounds(a) },
    { title: "Use of bounds", cell: (a) => (a.missing ? "" : meter(a)) },
    { title: "Version", num: true, wide: true, cell: (a) => String(a.version) },
  ];
}

// Balances as of the time-travel position: each listed account read again at that seq.
async function atPosition(accounts, signal) {
  const seq = asOf();
  if (seq === null) return accounts;
  const read = async (account) => {
    try {
      return await api(`/v1/accounts/${encode(account.id)}?as_of=${seq}`, { signal });
    } catch (error) {
      if (error.status === 404) return { ...account, missing: true };
      throw error;
    }
  };
  const out = [];
  for (let start = 0; start < accounts.length; start += 8) {
    out.push(...(await Promise.all(accounts.slice(start, start + 8).map(read))));
  }
  return out;
}

async function accountsView(_, query) {
  const prefix = query.get("prefix") || "";
  const filter = h("input", { type: "search", value: prefix, placeholder: "Filter by id prefix", "aria-label": "Filter by id prefix", id: "prefix-input" });
  const form = h("form", { class: "toolbar", onsubmit: (event) => {
    event.preventDefault();
    location.hash = href("/accounts", { prefix: filter.value.trim() });
  } }, filter, h("button", { type: "submit" }, "Filter"), h("span", { class: "muted" }, prefix ? "accounts whose id starts with the prefix, in id order" : "the roots of the account trees; open one to see its children"));
  const title = h("h1", {}, "Accounts", asOf() !== null ? h("span", { class: "muted" }, ` as of seq ${asOf()}`) : "");
  const signal = state.view.signal;
  const columns = accountColumns((account) => account.depth);
  const depthOf = (row) => Number(row.dataset.depth);
  // The rows after `row` that belong to its subtree (children, theirs, their "more" rows).
  const subtree = (row) => {
    const rows = [];
    for (let next = row.nextElementSibling; next && depthOf(next) > depthOf(row); next = next.nextElementSibling) rows.push(next);
    return rows;
  };
  const toggle = (row, account) => async () => {
    const button = account.toggle;
    if (button.getAttribute("aria-expanded") === "true") {
      subtree(row).forEach((child) => child.remove());
      button.setAttribute("aria-expanded", "false");
      button.textContent = "▸";
      return;
    }
    button.disabled = true;
    await insertChildren(row, account, null);
    button.disabled = button.textContent === "·";
  };
  const renderRows = (accounts, depth) => accounts.map((account) => {
    account.depth = depth;
    account.toggle = h("button", { type: "button", class: "toggle", "aria-expanded": "false", "aria-label": `children of ${account.id}`, title: "Show or hide children" }, "▸");
    const row = tableRow(columns, account, (a) => href(`/account/${encode(a.id)}`));
    row.dataset.account = account.id;
    row.dataset.depth = String(depth);
    account.toggle.addEventListener("click", toggle(row, account));
    return row;
  });
  // Inserts a page of `account`'s children (after `after`) at the end of its subtree.
  const insertChildren = async (row, account, after) => {
    try {
      const page = await api(`/v1/accounts?parent=${encode(account.id)}&limit=${PAGE}${after ? `&after=${encode(after)}` : ""}`, { signal });
      const children = await atPosition(page.accounts, signal);
      const rows = renderRows(children, depthOf(row) + 1);
      if (!children.length && !after) {
        account.toggle.textContent = "·";
        return;
      }
      account.toggle.setAttribute("aria-expanded", "true");
      account.toggle.textContent = "▾";
      if (page.next_after) {
        const more = h("tr", { dataset: { more: account.id, depth: String(depthOf(row) + 1) } }, h("td", { colspan: String(columns.length) }, h("button", { type: "button", onclick: async (event) => {
          const moreRow = event.target.closest("tr");
          event.target.disabled = true;
          await insertChildren(row, account, page.next_after);
          moreRow.remove();
        } }, `More children of ${account.id}`)));
        rows.push(more);
      }
      (subtree(row).at(-1) || row).after(...rows);
    } catch (error) {
      if (!aborted(error)) notice(error.message, true);
    }
  };
  const holder = h("div");
  const cursors = [null];
  const turn = async (index) => {
    holder.replaceChildren(h("p", { class: "muted" }, "Loading..."));
    try {
      const query = prefix ? `prefix=${encode(prefix)}` : "roots=true";
      const cursor = cursors[index];
      const page = await api(`/v1/accounts?${query}&limit=${PAGE}${cursor ? `&after=${encode(cursor)}` : ""}`, { signal });
      const accounts = await atPosition(page.accounts, signal);
      cursors.length = index + 1;
      if (page.next_after) cursors.push(page.next_after);
      const rows = accounts.length ? tableOf(columns, h("tbody", {}, renderRows(accounts, 0)), "accounts-table") : h("p", { class: "muted" }, "No accounts.");
      holder.replaceChildren(rows, pager(index, cursors, turn));
    } catch (error) {
      holder.replaceChildren(failure(error) || "");
    }
  };
  show(title, form, holder);
  await turn(0);
}

async function historyChart(id, signal) {
  const seq = asOf();
  const changes = [];
  let after = 0;
  for (let page = 0; page < HISTORY_CHART_PAGES_MAX; page += 1) {
    const answer = await api(`/v1/accounts/${encode(id)}/history?after_seq=${after}&limit=1000`, { signal });
    changes.push(...answer.changes.filter((change) => seq === null || change.seq <= seq));
    if (!answer.next_after_seq || (seq !== null && answer.next_after_seq >= seq)) break;
    after = answer.next_after_seq;
  }
  const times = changes.map((change) => Number(change.timestamp) / 1e9);
  const balance = changes.map((change) => Number(change.balance));
  const available = changes.map((change) => Number(change.available));
  const box = chart({
    title: `Balance over time (${changes.length} changes${changes.length >= HISTORY_CHART_PAGES_MAX * 1000 ? ", the first ones" : ""})`,
    times,
    series: [
      { label: "balance", values: balance, stepped: true },
      { label: "available", values: available, stepped: true },
    ],
    labels: [changes.map((change) => change.balance), changes.map((change) => change.available)],
  });
  box.id = "balance-chart";
  box.dataset.points = String(changes.length);
  return box;
}

async function accountView(id, query) {
  const signal = state.view.signal;
  const seq = asOf();
  let account;
  try {
    account = await api(`/v1/accounts/${encode(id)}${seq !== null ? `?as_of=${seq}` : ""}`, { signal });
  } catch (error) {
    if (!aborted(error)) show(h("h1", {}, id), failure(error));
    return;
  }
  const title = h("h1", {}, `Account ${account.id}`, seq !== null ? h("span", { class: "muted" }, ` as of seq ${seq}`) : "", account.closed ? h("span", { class: "closed" }, "closed") : "");
  const summary = cards([
    ["Balance", account.balance, "balance"],
    ["Available", account.available, "available"],
    ["Debits posted", account.debits_posted, "debits_posted"],
    ["Credits posted", account.credits_posted, "credits_posted"],
    ["Debits pending", account.debits_pending, "debits_pending"],
    ["Credits pending", account.credits_pending, "credits_pending"],
    ["Bounds", bounds(account), "bounds"],
    ["Use of bounds", meter(account), "use"],
    ["Version", String(account.version), "version"],
  ]);
  const fields = h("dl", { class: "fields" },
    h("dt", {}, "Asset"), h("dd", {}, account.asset),
    h("dt", {}, "Parent"), h("dd", {}, account.parent ? accountLink(account.parent) : "none (a root)"),
    h("dt", {}, "Created"), h("dd", {}, `seq ${account.created_seq}, ${time(account.timestamp)}`),
    h("dt", {}, "Metadata"), h("dd", {}, account.metadata ? h("pre", {}, JSON.stringify(account.metadata, null, 2)) : "none"),
  );
  const chartHolder = h("div", {}, h("p", { class: "muted" }, "Loading the history..."));
  const transfers = pagedTable({
    columns: [
      { title: "Seq", num: true, cell: (t) => String(t.seq) },
      { title: "Time", wide: true, cell: (t) => time(t.timestamp) },
      { title: "Transfer", cell: (t) => transferLink(t.id) },
      { title: "Debit", cell: (t) => accountLink(t.debit) },
      { title: "Credit", cell: (t) => accountLink(t.credit) },
      { title: "Amount", num: true, cell: (t) => t.amount || "" },
      { title: "State", cell: (t) => stateBadge(t.state) },
    ],
    load: async (cursor) => {
      const page = await api(`/v1/accounts/${encode(id)}/transfers?limit=${PAGE}&after_seq=${cursor || 0}`, { signal });
      return { rows: page.transfers, next: page.next_after_seq };
    },
    rowHref: (t) => href(`/transfer/${encode(t.id)}`),
    empty: "No transfers.",
  });
  const changes = pagedTable({
    columns: [
      { title: "Seq", num: true, cell: (c) => String(c.seq) },
      { title: "Time", wide: true, cell: (c) => time(c.timestamp) },
      { title: "Change", cell: (c) => (c.transfer ? h("span", {}, `${c.kind} `, transferLink(c.transfer)) : c.kind) },
      { title: "Balance after", num: true, cell: (c) => c.balance },
      { title: "Available after", num: true, cell: (c) => c.available },
      { title: "Version", num: true, wide: true, cell: (c) => String(c.version) },
    ],
    load: async (cursor) => {
      const page = await api(`/v1/accounts/${encode(id)}/history?limit=${PAGE}&after_seq=${cursor || 0}`, { signal });
      return { rows: page.changes, next: page.next_after_seq };
    },
    empty: "No changes.",
  });
  const subtree = pagedTable({
    columns: accountColumns(null),
    load: async (cursor) => {
      const page = await api(`/v1/accounts?parent=${encode(id)}&limit=${PAGE}${cursor ? `&after=${encode(cursor)}` : ""}`, { signal });
      return { rows: await atPosition(page.accounts, signal), next: page.next_after };
    },
    rowHref: (a) => href(`/account/${encode(a.id)}`),
    empty: "No children.",
  });
  show(title, summary, fields, chartHolder,
    h("h2", {}, "Changes, with the balance after each"), seq !== null ? h("p", { class: "muted" }, "All of them, also those after the as-of position.") : "", changes,
    h("h2", {}, "Transfers"), seq !== null ? h("p", { class: "muted" }, "All of them, also those after the as-of position.") : "", transfers,
    h("h2", {}, "Children"), subtree);
  try {
    chartHolder.replaceChildren(await historyChart(id, signal));
  } catch (error) {
    if (!aborted(error)) chartHolder.replaceChildren(failure(error));
  }
}

function writeAllowed() {
  // Read-only unless the ledger has keys and this one may write.
  return Boolean(state.whoami && state.whoami.key && state.whoami.scope !== "read");
}

function confirmAction(title, text) {
  const dialog = document.getElementById("confirm-dialog");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "confirm"), { once: true }));
}

async function resolveHold(hold, action) {
  const verb = action === "post" ? "Post" : "Void";
  const confirmed = await confirmAction(`${verb} hold ${hold.id}?`, `${verb} ${hold.amount} ${hold.asset} from ${hold.debit} to ${hold.credit}. This cannot be undone.`);
  if (!confirmed) return;
  // A key confined to some accounts makes ids under its own prefix.
  const prefix = (state.whoami && state.whoami.key && state.whoami.key.accounts[0]) || "";
  const random = [...crypto.getRandomValues(new Uint8Array(12))].map((byte) => byte.toString(16).padStart(2, "0")).join("");
  const id = `${prefix}console-${action}-${random}`;
  try {
    const answer = await api("/v1/transfers", { method: "POST", body: { transfers: [{ id, [action]: hold.id }] } });
    const result = answer.results[0];
    notice(`${verb}: ${result.result} (seq ${result.seq ?? "none"})`, result.result !== "created");
  } catch (error) {
    notice(`${verb} refused: ${error.message}`, true);
  }
  route();
}

// An allocation's legs are transfers of their own, `<id>/0`, `<id>/1`, ...: a table of them,
// or null if `id` has none.
async function legsOf(id, signal) {
  if (id.includes("/")) return null;
  const found = [];
  for (let leg = 0; leg < LEGS_SHOWN_MAX; leg += 1) {
    try {
      found.push(await api(`/v1/transfers/${encode(`${id}/${leg}`)}`, { signal }));
    } catch (error) {
      if (error.status === 404) break;
      throw error;
    }
  }
  if (!found.length) return null;
  return h("section", { id: "legs" }, h("h2", {}, `Legs (${found.length}${found.length === LEGS_SHOWN_MAX ? "+" : ""})`), table([
    { title: "Leg", cell: (t) => transferLink(t.id) },
    { title: "Debit", cell: (t) => accountLink(t.debit) },
    { title: "Credit", cell: (t) => accountLink(t.credit) },
    { title: "Amount", num: true, cell: (t) => (t.amount ? `${t.amount} ${t.asset}` : "") },
    { title: "State", cell: (t) => stateBadge(t.state) },
  ], found, (t) => href(`/transfer/${encode(t.id)}`)));
}

async function transferView(id) {
  const signal = state.view.signal;
  let transfer;
  try {
    transfer = await api(`/v1/transfers/${encode(id)}`, { signal });
  } catch (error) {
    if (aborted(error)) return;
    const legs = error.status === 404 ? await legsOf(id, signal) : null;
    show(h("h1", {}, legs ? `Allocation ${id}` : id), legs || failure(error));
    return;
  }
  const rows = [
    ["State", stateBadge(transfer.state)],
    ["Result", transfer.result],
    ["Seq", String(transfer.seq)],
    ["Time", time(transfer.timestamp)],
  ];
  if (transfer.amount) rows.push(["Amount", h("span", { class: "num", dataset: { field: "amount" } }, `${transfer.amount} ${transfer.asset}`)]);
  if (transfer.debit) rows.push(["Debit", accountLink(transfer.debit)]);
  if (transfer.credit) rows.push(["Credit", accountLink(transfer.credit)]);
  if (transfer.pending) rows.push(["Kind", "hold (pending)"]);
  if (transfer.post) rows.push(["Posts hold", transferLink(transfer.post)]);
  if (transfer.void) rows.push(["Voids hold", transferLink(transfer.void)]);
  if (transfer.resolved_by) rows.push(["Resolved by", transferLink(transfer.resolved_by)]);
  const countdown = h("span", { class: "countdown", id: "countdown" });
  if (transfer.expires_at) rows.push(["Expires", h("span", {}, `${time(transfer.expires_at)} `, transfer.state === "pending" ? h("span", {}, "(in ", countdown, ")") : "")]);
  if (transfer.key) rows.push(["Made with key", transfer.key]);
  rows.push(["Metadata", transfer.metadata ? h("pre", {}, JSON.stringify(transfer.metadata, null, 2)) : "none"]);
  const fields = h("dl", { class: "fields" }, rows.flatMap(([label, value]) => [h("dt", {}, label), h("dd", {}, value)]));
  const actions = h("div", { class: "toolbar" });
  if (transfer.pending && transfer.state === "pending") {
    if (writeAllowed()) {
      actions.append(
        h("button", { type: "button", id: "post-hold", onclick: () => resolveHold(transfer, "post") }, "Post hold"),
        h("button", { type: "button", id: "void-hold", class: "danger", onclick: () => resolveHold(transfer, "void") }, "Void hold"),
      );
    } else {
      actions.append(h("span", { class: "muted" }, state.whoami && state.whoami.key ? "This key may only read." : "Read-only: the console posts and voids holds only with a write key."));
    }
  }
  const legs = h("div");
  show(h("h1", {}, `Transfer ${transfer.id}`), fields, actions, legs);
  if (transfer.expires_at && transfer.state === "pending") {
    const expiresMs = Math.floor(Number(transfer.expires_at) / 1e6);
    const tick = async () => {
      const left = expiresMs - Date.now();
      countdown.textContent = duration(left);
      if (left <= 0) {
        // Expiry is decided by the ledger: ask until it says so.
        const now = await api(`/v1/transfers/${encode(id)}`, { signal }).catch(() => null);
        if (now && now.state !== "pending") route();
      }
    };
    tick();
    const timer = setInterval(tick, HOLD_REFRESH_MS);
    signal.addEventListener("abort", () => clearInterval(timer));
  }
  // A post or void of an allocation's held legs has legs of its own too.
  const found = await legsOf(transfer.id, signal);
  if (found) legs.replaceChildren(found);
}

async function holdsView() {
  const signal = state.view.signal;
  const countdowns = [];
  const listing = pagedTable({
    columns: [
      { title: "Hold", cell: (t) => transferLink(t.id) },
      { title: "Debit", cell: (t) => accountLink(t.debit) },
      { title: "Credit", cell: (t) => accountLink(t.credit) },
      { title: "Amount", num: true, cell: (t) => `${t.amount} ${t.asset}` },
      { title: "Expires", wide: true, cell: (t) => time(t.expires_at) },
      {
        title: "In",
        num: true,
        cell: (t) => {
          const cell = h("span", { class: "countdown" });
          countdowns.push([cell, Math.floor(Number(t.expires_at) / 1e6)]);
          cell.textContent = duration(Math.floor(Number(t.expires_at) / 1e6) - Date.now());
          return cell;
        },
      },
    ],
    load: async (cursor) => {
      countdowns.length = 0;
      const page = await api(`/v1/holds?limit=${PAGE}${cursor ? `&after=${encode(cursor)}` : ""}`, { signal });
      return { rows: page.holds, next: page.next_after };
    },
    rowHref: (t) => href(`/transfer/${encode(t.id)}`),
    empty: "No open holds with a timeout.",
  });
  const timer = setInterval(() => {
    for (const [cell, at] of countdowns) cell.textContent = duration(at - Date.now());
  }, HOLD_REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
  show(h("h1", {}, "Open holds"), h("p", { class: "muted" }, "Holds with a timeout, soonest to expire first. Holds without one never expire and are listed with their accounts' transfers."), listing);
}

function describe(entry) {
  switch (entry.type) {
    case "transfer":
      return h("span", {}, transferLink(entry.id), entry.debit ? h("span", {}, " ", accountLink(entry.debit), " → ", accountLink(entry.credit), ` ${entry.amount} ${entry.asset}`) : "", entry.pending ? " (hold)" : "", entry.post ? h("span", {}, " posts ", transferLink(entry.post)) : "", entry.void ? h("span", {}, " voids ", transferLink(entry.void)) : "");
    case "account_created":
      return h("span", {}, accountLink(entry.id), ` (${entry.asset})`, entry.parent ? h("span", {}, " under ", accountLink(entry.parent)) : "");
    case "account_updated":
      return h("span", {}, accountLink(entry.id), ` bounds ${bounds(entry)}`, entry.closed ? " closed" : "");
    case "asset_created":
      return `${entry.code} (scale ${entry.scale})`;
    case "hold_expired":
      return h("span", {}, transferLink(entry.pending_id), " expired: ", accountLink(entry.debit), " → ", accountLink(entry.credit), ` ${entry.amount}`);
    case "hold_renewed":
      return h("span", {}, transferLink(entry.pending_id), ` now expires ${time(entry.expires_at)}`);
    default:
      return entry.type;
  }
}

function touches(entry, account) {
  return [entry.id, entry.debit, entry.credit, entry.parent].includes(account);
}

async function journalView(_, query) {
  const signal = state.view.signal;
  const type = query.get("type") || "";
  const account = query.get("account") || "";
  const typeSelect = h("select", { "aria-label": "Entry type", id: "journal-type" }, ["", "transfer", "account_created", "account_updated", "asset_created", "hold_expired", "hold_renewed"].map((value) => h("option", { value, selected: value === type }, value || "every type")));
  const accountInput = h("input", { type: "search", value: account, placeholder: "Account id", "aria-label": "Account id", id: "journal-account" });
  const apply = () => { location.hash = href("/journal", { type: typeSelect.value, account: accountInput.value.trim() }); };
  typeSelect.addEventListener("change", apply);
  const form = h("form", { class: "toolbar", onsubmit: (event) => { event.preventDefault(); apply(); } }, typeSelect, accountInput, h("button", { type: "submit" }, "Filter"));
  const status = h("span", { class: "live", id: "journal-status" }, "connecting...");
  const columns = [
    { title: "Seq", num: true, cell: (e) => String(e.seq) },
    { title: "Time", wide: true, cell: (e) => time(e.timestamp) },
    { title: "Type", cell: (e) => e.type },
    { title: "What", cell: describe },
    { title: "Result", cell: (e) => (e.result ? (e.result === "created" ? e.result : h("span", { class: "error" }, e.result)) : "") },
  ];
  const body = h("tbody", { id: "journal-rows" });
  show(h("h1", {}, "Journal ", status), form, tableOf(columns, body));
  const shown = (entry) => (!type || entry.type === type) && (!account || touches(entry, account));
  const add = (entries) => {
    for (const entry of entries.filter(shown)) {
      const row = tableRow(columns, entry, (e) => (e.type === "transfer" ? href(`/transfer/${encode(e.id)}`) : null));
      row.dataset.seq = String(entry.seq);
      body.prepend(row);
    }
    while (body.children.length > JOURNAL_ROWS_MAX) body.lastElementChild.remove();
  };
  const stopped = (error) => {
    if (error.name === "AbortError") return;
    status.textContent = "stopped";
    status.className = "error";
    notice(`The journal tail stopped: ${error.message}`, true);
  };
  // The last entries first (the view is drawn once they are), then a long poll for each
  // next one, for as long as the view is shown.
  let after;
  let end;
  const next = async () => {
    const wait = after >= end ? JOURNAL_WAIT_MS : 0;
    const page = await api(`/v1/journal?after_seq=${after}&limit=1000&wait_ms=${wait}`, { signal });
    add(page.entries);
    after = Math.max(after, page.next_after_seq);
    status.textContent = `live, after seq ${after}`;
  };
  try {
    ({ last_seq: end } = await api("/v1/whoami", { signal }));
    after = Math.max(0, end - PAGE);
    await next();
  } catch (error) {
    stopped(error);
    return;
  }
  (async () => {
    let backoff = 1000;
    while (!signal.aborted) {
      try {
        await next();
        backoff = 1000;
      } catch (error) {
        if (aborted(error)) return;
        status.textContent = `reconnecting (${error.message})`;
        await pause(backoff, signal);
        backoff = Math.min(backoff * 2, 30000);
      }
    }
  })().catch(stopped);
}

async function healthView() {
  const signal = state.view.signal;
  const summary = h("div");
  const charts = h("div", { class: "charts" });
  show(h("h1", {}, "Health"), summary, charts);
  let plots = null;
  const refresh = async () => {
    const stats = await api("/v1/stats", { signal });
    const health = await api("/healthz", { signal }).catch((error) => {
      if (error.status === 503) return error.answer || { status: "unavailable" };
      if (error.status === 401 || error.status === 403) return { status: "(needs an unconfined key)" };
      if (aborted(error)) throw error;
      return null;
    });
    const last = stats.samples[stats.samples.length - 1] || {};
    const commitMs = last.commit_ms_mean === undefined ? "--" : last.commit_ms_mean.toFixed(2);
    summary.replaceChildren(cards([
      ["Status", health ? health.status : "(served on the operations address)", "status"],
      ["Engine", stats.engine, "engine"],
      ["Node", stats.node, "node"],
      ["Last seq", String(last.last_seq ?? "--"), "last_seq"],
      ["Durable seq", String(last.durable_seq ?? "--"), "durable_seq"],
      ["Queue depth", String(last.queue_depth ?? "--"), "queue_depth"],
      ["Entries per second", last.events_per_second === undefined ? "--" : last.events_per_second.toFixed(0), "events_per_second"],
      ["Mean commit (ms)", commitMs, "commit_ms"],
    ]));
    const times = stats.samples.map((sample) => sample.at_ms / 1000);
    const data = [
      [times, stats.samples.map((sample) => sample.events_per_second)],
      [times, stats.samples.map((sample) => (sample.commit_ms_mean === undefined ? null : sample.commit_ms_mean))],
      [times, stats.samples.map((sample) => sample.queue_depth)],
    ];
    if (!plots) {
      plots = [
        chart({ title: "Journal entries per second", times: data[0][0], series: [{ label: "entries/s", values: data[0][1] }] }),
        chart({ title: "Mean commit time (ms)", times: data[1][0], series: [{ label: "ms", values: data[1][1] }] }),
        chart({ title: "Queue depth (requests)", times: data[2][0], series: [{ label: "queued", values: data[2][1], stepped: true }] }),
      ];
      plots[0].id = "chart-rate";
      plots[1].id = "chart-commit";
      plots[2].id = "chart-queue";
      charts.replaceChildren(...plots);
    } else {
      plots.forEach((box, index) => box.plot.setData(data[index]));
    }
    charts.dataset.samples = String(stats.samples.length);
  };
  try {
    await refresh();
  } catch (error) {
    summary.replaceChildren(failure(error) || "");
    return;
  }
  const timer = setInterval(() => refresh().catch((error) => aborted(error) || notice(error.message, true)), STATS_REFRESH_MS);
  signal.addEventListener("abort", () => clearInterval(timer));
}

// ---------------------------------------------------------------- routing and chrome

async function route() {
  state.view.abort();
  state.view = new AbortController();
  const hash = location.hash.slice(1) || "/accounts";
  const [path] = hash.split("?");
  const [, name = "accounts", ...rest] = path.split("/");
  const argument = rest.length ? decodeURIComponent(rest.join("/")) : "";
  const view = views[name] || accountsView;
  const active = { account: "accounts", transfer: null }[name] ?? name;
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const seq = asOf();
  const asOfInput = document.getElementById("as-of-input");
  if (document.activeElement !== asOfInput) asOfInput.value = seq === null ? "" : `seq ${seq}`;
  document.getElementById("as-of-clear").hidden = seq === null;
  if (seq === null) delete document.documentElement.dataset.asOf;
  else document.documentElement.dataset.asOf = String(seq);
  // `ready` names the location whose view is drawn, for whoever waits on the console.
  const routed = location.hash;
  main().dataset.view = name;
  main().dataset.ready = "";
  try {
    await view(argument, currentQuery());
  } catch (error) {
    const shown = failure(error);
    if (shown) show(shown);
  }
  main().dataset.ready = routed;
}

async function search(text) {
  const id = text.trim();
  if (!id) return;
  const places = [["account", `/v1/accounts/${encode(id)}`], ["transfer", `/v1/transfers/${encode(id)}`], ["transfer", `/v1/transfers/${encode(`${id}/0`)}`]];
  for (const [kind, path] of places) {
    try {
      await api(path);
      location.hash = href(`/${kind}/${encode(id)}`);
      notice("");
      return;
    } catch (error) {
      if (error.status !== 404 && error.status !== 400) {
        notice(error.message, true);
        return;
      }
    }
  }
  notice(`No account or transfer has the id ${id}.`, true);
}

// A journal position (a number, or "seq N") or a time the browser can read, such as
// "2026-11-30 14:05" (local time) or an ISO 8601 time.
async function travel(text) {
  const value = text.trim();
  const query = currentQuery();
  if (!value) {
    query.delete("as_of");
  } else {
    const seq = value.match(/^(?:seq\s*)?(\d+)$/i);
    if (seq) {
      query.set("as_of", seq[1]);
    } else {
      // A date alone is read as local midnight, like a date and time without a zone.
      const local = /^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00` : value;
      let ms = Date.parse(local);
      if (Number.isNaN(ms)) ms = Date.parse(local.replace(" ", "T"));
      if (Number.isNaN(ms)) {
        notice(`"${value}" is neither a journal position nor a time (try 2026-11-30 14:05)`, true);
        return;
      }
      const position = await api(`/v1/journal/position?at=${(BigInt(ms) * 1000000n).toString()}`);
      query.set("as_of", String(position.seq));
      notice(`As of ${new Date(ms).toString()}: journal position ${position.seq}.`);
    }
  }
  const [path] = (location.hash.slice(1) || "/accounts").split("?");
  const text2 = query.toString();
  location.hash = `#${path}${text2 ? `?${text2}` : ""}`;
}

function askForKey(message) {
  const dialog = document.getElementById("key-dialog");
  const error = document.getElementById("key-error");
  error.textContent = message || "";
  error.hidden = !message;
  if (!dialog.open) dialog.showModal();
}

async function useKey(key) {
  state.key = key || null;
  if (state.key) sessionStorage.setItem("tally-key", state.key);
  else sessionStorage.removeItem("tally-key");
  await identify();
  route();
}

async function identify() {
  try {
    state.whoami = await api("/v1/whoami");
    const button = document.getElementById("key-button");
    button.textContent = state.whoami.key ? `Key ${state.whoami.key.id} (${state.whoami.scope})` : "Key";
  } catch (error) {
    state.whoami = null;
    if (error.status !== 401) notice(error.message, true);
  }
}

function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  localStorage.setItem("tally-theme", theme);
}

function selectRow(step) {
  const rows = [...document.querySelectorAll("main tbody tr[data-href]")];
  if (!rows.length) return;
  const current = rows.findIndex((row) => row.getAttribute("aria-selected") === "true");
  const next = Math.min(rows.length - 1, Math.max(0, current < 0 ? 0 : current + step));
  rows.forEach((row, index) => row.setAttribute("aria-selected", index === next ? "true" : "false"));
  rows[next].scrollIntoView({ block: "nearest" });
}

function onKey(event) {
  const typing = event.target.closest("input, select, textarea, dialog");
  if (event.key === "Escape" && typing) {
    event.target.blur();
    return;
  }
  if (typing || event.ctrlKey || event.metaKey || event.altKey) return;
  const shortcuts = { 1: "#/accounts", 2: "#/holds", 3: "#/journal", 4: "#/health" };
  if (event.key === "/") {
    event.preventDefault();
    document.getElementById("search-input").focus();
  } else if (shortcuts[event.key]) {
    location.hash = shortcuts[event.key];
  } else if (event.key === "j" || event.key === "ArrowDown") {
    event.preventDefault();
    selectRow(1);
  } else if (event.key === "k" || event.key === "ArrowUp") {
    event.preventDefault();
    selectRow(-1);
  } else if (event.key === "Enter") {
    const selected = document.querySelector('main tbody tr[aria-selected="true"]');
    if (selected && selected.dataset.href) location.hash = selected.dataset.href;
  } else if (event.key === "Backspace") {
    history.back();
  }
}

async function start() {
  const saved = localStorage.getItem("tally-theme");
  applyTheme(saved || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light"));
  document.getElementById("theme").addEventListener("click", () => {
    applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark");
    route();
  });
  document.getElementById("search").addEventListener("submit", (event) => {
    event.preventDefault();
    search(document.getElementById("search-input").value);
  });
  document.getElementById("as-of").addEventListener("submit", (event) => {
    event.preventDefault();
    travel(document.getElementById("as-of-input").value).catch((error) => notice(error.message, true));
  });
  document.getElementById("as-of-clear").addEventListener("click", () => travel(""));
  document.getElementById("key-button").addEventListener("click", () => askForKey(""));
  document.getElementById("key-form").addEventListener("submit", () => useKey(document.getElementById("key-input").value.trim()));
  document.getElementById("key-forget").addEventListener("click", () => {
    document.getElementById("key-dialog").close();
    document.getElementById("key-input").value = "";
    useKey("");
  });
  document.addEventListener("keydown", onKey);
  document.addEventListener("click", (event) => {
    const row = event.target.closest("tbody tr[data-href]");
    if (row && !event.target.closest("a, button")) location.hash = row.dataset.href;
  });
  window.addEventListener("hashchange", route);
  if (!location.hash) history.replaceState(null, "", "#/accounts");
  await identify();
  await route();
}

if (window.uPlot) start();
else window.addEventListener("load", start);
