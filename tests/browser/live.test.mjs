// live.test.mjs - the live pages in a real browser (Debian's chromium,
// driven by playwright-core), against coserve with two workers, first
// directly and then behind a real nginx running the shipped
// deploy/nginx/coserve.conf:
//  - two /chat pages, each on its own worker, chat both ways;
//  - two notes pages: a note added, edited and deleted on one (through the
//    page, then through the JSON API) appears, changes and goes on the
//    other without a reload;
//  - a reload (HUP to the master): the pages reconnect by themselves
//    (body[data-connected], body[data-live] go and come back), to the new
//    workers, and chat and notes still work.
//
//   node tests/browser/live.test.mjs      (tests/browser/run.sh sets it up)
//
// Which worker takes a connection is the kernel's choice: to place the two
// chat pages on different workers the test stops the other worker
// (SIGSTOP) while a page connects, and the chat's hello names the worker,
// so placement is checked, not assumed. Each page has its own browser
// context (its own connections): a page cannot reuse a connection another
// one holds to the stopped worker. Prints "browser: N passed, N failed"
// last and exits non-zero on failure.
import crypto from "node:crypto";
import fs from "node:fs";

import { chromium } from "playwright-core";

import {
  CHROMIUM, GUARD_MS, WWW, check, children, startCoserve, startNginx,
  runCases, tempDir, waitFor, waitReplaced,
} from "./lib.mjs";

const tmp = tempDir("live");
let server = null;
let nginx = null;
let browser = null;
const contexts = [];
const problems = [];

async function newPage(url) {
  const ctx = await browser.newContext({ viewport: { width: 1000, height: 700 } });
  contexts.push(ctx);
  ctx.setDefaultTimeout(GUARD_MS);
  const page = await ctx.newPage();
  // uncaught exceptions are the page's bugs; console errors are not
  // counted (a socket closed by a reload logs one)
  page.on("pageerror", (e) => problems.push(`${url}: page error: ${e.message}`));
  await page.goto(url);
  return page;
}

async function closePages() {
  for (const c of contexts.splice(0)) await c.close().catch(() => {});
}

// The worker a chat page is connected to, from its status line.
async function workerOf(page) {
  await page.locator("body[data-connected]").waitFor({ state: "attached" });
  const status = await page.locator("#status").textContent();
  const m = /Connected \(worker (\d+)\)/.exec(status);
  check(m, "status: " + status);
  return Number(m[1]);
}

// Opens a chat page while only `on` (one of workers) takes connections.
async function chatOn(base, workers, on) {
  const others = workers.filter((w) => w !== on);
  for (const w of others) process.kill(w, "SIGSTOP");
  try {
    const page = await newPage(base + "/chat.html");
    const w = await workerOf(page);
    check(w === on, `the page is on worker ${w}, not ${on}`);
    return page;
  } finally {
    for (const w of others) process.kill(w, "SIGCONT");
  }
}

// A message typed on `from` shows on every page of `to`.
async function say(from, to, text) {
  await from.fill("#text", text);
  await from.click("#send");
  for (const p of to) await p.locator("#messages li", { hasText: text }).waitFor();
}

async function chatBothWays(a, b, tag) {
  const n = crypto.randomBytes(3).toString("hex");
  await say(a, [a, b], `A says hi ${tag} ${n} <b>é</b>`);
  await say(b, [a, b], `B answers ${tag} ${n}`);
  // text, never HTML
  check((await b.locator("#messages li b").count()) === 0, "a message became HTML");
}

// Records every change of body[attr] in the page (a reconnect is a
// removal then an addition; polling could miss it).
async function watchAttr(page, attr) {
  await page.evaluate((a) => {
    window.__flips = [];
    new MutationObserver(() => window.__flips.push(document.body.hasAttribute(a)))
      .observe(document.body, { attributes: true, attributeFilter: [a] });
  }, attr);
}

// The attribute went away and came back (and is there now).
async function reconnected(page, attr) {
  await waitFor(async () => page.evaluate(
    (a) => window.__flips.includes(false) && window.__flips.at(-1) === true &&
      document.body.hasAttribute(a), attr),
  async () => `${attr} to go and come back on ${page.url()}: ` +
    JSON.stringify(await page.evaluate(() => window.__flips)));
}

async function noteTexts(page) {
  return page.locator(".note .text").allTextContents();
}

async function notesLive(base) {
  const a = await newPage(base + "/notes.html");
  const b = await newPage(base + "/notes.html");
  for (const p of [a, b]) await p.locator("body[data-live]").waitFor({ state: "attached" });
  const n = crypto.randomBytes(3).toString("hex");

  // through page A's own controls
  const text = `written on A ${n}`;
  await a.fill("#add-text", text);
  await a.click("#add-button");
  await b.locator(".note .text", { hasText: text }).waitFor();
  const edited = `edited on A ${n}`;
  await a.locator(".note", { hasText: text }).locator("button.edit").click();
  await a.locator(".note .editor textarea").fill(edited);
  await a.locator(".note .editor button.save").click();
  await b.locator(".note .text", { hasText: edited }).waitFor();
  await b.locator(".note .text", { hasText: text }).waitFor({ state: "detached" });
  const del = a.locator(".note", { hasText: edited }).locator("button.delete");
  await del.click();
  await a.locator(".note button.delete.confirm").waitFor();
  await del.click();
  await b.locator(".note", { hasText: edited }).waitFor({ state: "detached" });

  // through the JSON API: both pages follow
  const api = `via the API ${n}`;
  let res = await fetch(base + "/notes", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: api }),
  });
  check(res.status === 201, "POST: " + res.status);
  const { id } = await res.json();
  for (const p of [a, b]) await p.locator(".note .text", { hasText: api }).waitFor();
  res = await fetch(`${base}/notes/${id}`, {
    method: "PUT", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: api + " changed" }),
  });
  check(res.status === 200, "PUT: " + res.status);
  for (const p of [a, b]) await p.locator(".note .text", { hasText: api + " changed" }).waitFor();
  res = await fetch(`${base}/notes/${id}`, { method: "DELETE" });
  check(res.status === 200 || res.status === 204, "DELETE: " + res.status);
  for (const p of [a, b]) {
    await p.locator(".note .text", { hasText: api }).waitFor({ state: "detached" });
    check(!(await noteTexts(p)).some((t) => t.includes(n)), "a note is left on a page");
  }
  return [a, b];
}

// Per deployment (direct, behind nginx): chat across the two workers,
// notes, then a reload under the open pages.
function deployment(name, baseOf) {
  let chats = [];
  let notes = [];
  return [
    [`${name}: two chat pages on two workers talk both ways`, async () => {
      const workers = children(server.pid);
      check(workers.length === 2, "workers: " + workers);
      chats = [await chatOn(baseOf(), workers, workers[0]),
        await chatOn(baseOf(), workers, workers[1])];
      await chatBothWays(chats[0], chats[1], "before");
    }],
    [`${name}: a note added, edited, deleted on one page (and by the API) shows live on another`,
      async () => {
        notes = await notesLive(baseOf());
      }],
    [`${name}: after a reload (HUP) the pages reconnect to the new workers by themselves`,
      async () => {
        check(chats.length === 2 && notes.length === 2, "no pages from the cases before");
        for (const p of chats) await watchAttr(p, "data-connected");
        for (const p of notes) await watchAttr(p, "data-live");
        const old = children(server.pid);
        process.kill(server.pid, "SIGHUP");
        let now;
        try {
          now = await waitReplaced(server, old);
        } catch (e) {
          const states = [];
          for (const p of [...chats, ...notes])
            states.push(`${p.url()}: ${await p.locator("#status").textContent()} ` +
              JSON.stringify(await p.evaluate(() => window.__flips)));
          throw new Error(e.message + "\npages:\n" + states.join("\n"));
        }
        for (const p of chats) {
          await reconnected(p, "data-connected");
          const w = await workerOf(p);
          check(now.includes(w), `chat reconnected to worker ${w}, not a new one (${now})`);
        }
        await chatBothWays(chats[0], chats[1], "after the reload");
        for (const p of notes) await reconnected(p, "data-live");
        const text = `after the reload ${crypto.randomBytes(3).toString("hex")}`;
        const res = await fetch(baseOf() + "/notes", {
          method: "POST", headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ text }),
        });
        check(res.status === 201, "POST: " + res.status);
        for (const p of notes) await p.locator(".note .text", { hasText: text }).waitFor();
        check(problems.length === 0, problems.join("\n"));
        await closePages();
      }],
  ];
}

const cases = [
  ["live: coserve (2 workers) and chromium up", async () => {
    server = await startCoserve(tmp, ["webchat.so", "notes.so", "hello.so"], { workers: 2 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"],
      timeout: 60000,
    });
  }],
  ...deployment("direct", () => server.base),
  ["live: nginx up on deploy/nginx/coserve.conf", async () => {
    check(server, "no coserve");
    nginx = await startNginx(tmp, server, WWW);
    // nginx serves the pages itself (www), coserve the rest
    const res = await fetch(nginx.base + "/chat.html");
    check(res.status === 200 && /text\/html/.test(res.headers.get("content-type")),
      "chat.html through nginx: " + res.status + " " + res.headers.get("content-type"));
  }],
  ...deployment("nginx", () => nginx.base),
  ["live: coserve and nginx stop cleanly", async () => {
    await closePages();
    if (nginx) {
      const st = await nginx.stop("SIGQUIT");
      check(st.code === 0, "nginx exited with " + JSON.stringify(st) + "\n" +
        fs.readFileSync(nginx.errorLog, "utf8").slice(-3000));
    }
    const st = await server.stop("SIGTERM");
    check(st.code === 0, `coserve exited with ${JSON.stringify(st)}:\n${server.tail()}`);
    check(!/AddressSanitizer|runtime error|killed by signal|exited with status/.test(server.log),
      "coserve's log:\n" + server.tail());
    check(!/grace period over/.test(server.log), "a reload or the stop took the whole grace:\n" + server.tail());
  }],
];

await runCases(cases, async () => {
  await closePages();
  if (browser) await browser.close().catch(() => {});
  if (nginx) await nginx.stop("SIGTERM");
  if (server) await server.stop("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});
