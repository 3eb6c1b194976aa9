// notes.test.mjs - the notes page in a real browser (Debian's chromium,
// driven by playwright-core): add a note, see it listed, edit it, search for
// it, delete it; screenshots go to build/notes.png (desktop) and
// build/notes-phone.png (phone).
//
//   node tests/browser/notes.test.mjs      (tests/browser/run.sh sets it up)
//
// Starts build/coserve on a free loopback port with a temp database and a
// temp apps dir holding notes.so. Prints "browser: N passed, N failed" last
// and exits non-zero on failure.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BIN = process.env.COSERVE_BIN || path.join(ROOT, "build/coserve");
const APPS = process.env.COSERVE_APPS || path.join(ROOT, "build/apps");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const GUARD_MS = 15000;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "coserve-browser-"));
let server = null;
let serverLog = "";
let context = null;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(cond, message) {
  if (!cond) throw new Error(message);
}

async function startServer() {
  const apps = path.join(tmp, "apps");
  fs.mkdirSync(apps);
  for (const so of ["notes.so", "hello.so"]) {
    const from = path.resolve(APPS, so);
    check(fs.existsSync(from), `${from} missing (make build/coserve apps)`);
    fs.symlinkSync(from, path.join(apps, so));
  }
  check(fs.existsSync(BIN), `${BIN} missing (make build/coserve apps)`);
  const port = await freePort();
  server = spawn(BIN, [
    "--listen", `127.0.0.1:${port}`, "--apps", apps,
    "--www", path.join(ROOT, "www"), "--workers", "1", "--access-log", "off",
  ], {
    env: { ...process.env, COSERVE_NOTES_DB: path.join(tmp, "notes.db") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (d) => { serverLog += d; });
  server.stderr.on("data", (d) => { serverLog += d; });
  const base = `http://127.0.0.1:${port}`;
  const end = Date.now() + GUARD_MS;
  for (;;) {
    check(server.exitCode === null, "the server exited:\n" + serverLog);
    try {
      const res = await fetch(base + "/notes");
      if (res.status === 200) return base;
    } catch (e) {
      // not listening yet
    }
    check(Date.now() < end, "the server did not come up:\n" + serverLog);
    await sleep(50);
  }
}

async function stopServer() {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((r) => server.once("exit", r));
  server.kill("SIGTERM");
  const timer = setTimeout(() => server.kill("SIGKILL"), 10000);
  await exited;
  clearTimeout(timer);
}

async function launch() {
  return chromium.launchPersistentContext(path.join(tmp, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1100, height: 800 },
    timeout: 60000,
  });
}

async function notesTest(base) {
  context = await launch();
  context.setDefaultTimeout(GUARD_MS);
  const page = context.pages()[0] || (await context.newPage());
  const problems = [];
  page.on("pageerror", (e) => problems.push("page error: " + e.message));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push("console error: " + m.text());
  });

  await page.goto(base + "/notes.html");
  await page.locator("#empty").waitFor({ state: "visible" });

  // add two notes; the newest is listed first
  const first = "Buy milk from the browser test";
  await page.fill("#add-text", "Water the plants");
  await page.click("#add-button");
  await page.locator(".note .text", { hasText: "Water the plants" }).waitFor();
  await page.fill("#add-text", first);
  await page.click("#add-button");
  const note = page.locator(".note", { hasText: first });
  await note.waitFor();
  check((await page.locator(".note .text").first().textContent()) === first,
    "the new note is not listed first");
  check(await page.locator("#empty").isHidden(), "the empty message stayed");
  check(await page.locator("#more").isHidden(), "'load older' with 2 notes");
  const api = await (await fetch(base + "/notes")).json();
  check(api.notes.length === 2 && api.notes[0].text === first,
    "the API does not have the note: " + JSON.stringify(api));
  const id = api.notes[0].id;

  // edit it
  const edited = "Buy oat milk from the browser test";
  await note.locator("button.edit").click();
  const editor = page.locator(".note .editor textarea");
  check((await editor.inputValue()) === first, "the editor lost the text");
  await editor.fill(edited);
  await page.locator(".note .editor button.save").click();
  const editedNote = page.locator(".note", { hasText: edited });
  await editedNote.waitFor();
  await editedNote.locator(".when", { hasText: "edited" }).waitFor();
  const got = await (await fetch(`${base}/notes/${id}`)).json();
  check(got.text === edited, "the edit did not reach the server: " + JSON.stringify(got));

  // a reload shows it: the page reads from the server, not from memory
  await page.reload();
  await page.locator(".note .text", { hasText: edited }).waitFor();

  // live search: a word being typed finds it; other words do not
  await page.fill("#search", "oat mi");
  await page.locator("#status", { hasText: "1 match" }).waitFor();
  check((await page.locator(".note").count()) === 1, "search shows other notes");
  await page.locator(".note mark", { hasText: "oat" }).waitFor();
  await page.fill("#search", "zebra");
  await page.locator("#empty", { hasText: "No notes match" }).waitFor();
  check((await page.locator(".note").count()) === 0, "zebra matched a note");
  await page.fill("#search", "");
  await page.locator(".note .text", { hasText: "Water the plants" }).waitFor();
  check((await page.locator(".note").count()) === 2, "the list did not come back");

  // delete it: two clicks (the first arms the button)
  const del = page.locator(".note", { hasText: edited }).locator("button.delete");
  await del.click();
  await page.locator(".note button.delete.confirm").waitFor();
  await del.click();
  await page.locator(".note", { hasText: edited }).waitFor({ state: "detached" });
  check((await page.locator(".note").count()) === 1, "delete removed the wrong notes");
  const gone = await fetch(`${base}/notes/${id}`);
  check(gone.status === 404, "the note is still on the server: " + gone.status);

  // screenshots of what is left, desktop and phone
  await page.fill("#add-text", "Notes are kept in SQLite; every query runs on the offload pool.");
  await page.click("#add-button");
  await page.locator(".note .text", { hasText: "offload pool" }).waitFor();
  fs.mkdirSync(path.join(ROOT, "build"), { recursive: true });
  await page.screenshot({ path: path.join(ROOT, "build/notes.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(ROOT, "build/notes-phone.png"), fullPage: true });
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth > window.innerWidth);
  check(!overflow, "the page scrolls sideways on a phone");

  // paging: 20 at first, "Load older notes" brings the rest
  for (let i = 0; i < 25; i++) {
    const res = await fetch(base + "/notes", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: "bulk note " + i }),
    });
    check(res.status === 201, "bulk POST: " + res.status);
  }
  await page.reload();
  await page.locator(".note .text", { hasText: "bulk note 24" }).waitFor();
  check((await page.locator(".note").count()) === 20, "first page is not 20");
  await page.click("#more");
  await page.locator(".note .text", { hasText: "Water the plants" }).waitFor();
  check((await page.locator(".note").count()) === 27, "paging lost notes");
  check(await page.locator("#more").isHidden(), "'load older' after the last page");

  check(problems.length === 0, problems.join("\n"));
}

let passed = 0;
let failed = 0;
const guard = setTimeout(() => {
  console.error("browser: the test hung (120 s)");
  console.log("browser: 0 passed, 1 failed");
  if (server) server.kill("SIGKILL");
  process.exit(1);
}, 120000);
try {
  const base = await startServer();
  await notesTest(base);
  passed++;
  console.log("  ok    notes page: add, list, edit, search, delete (build/notes.png)");
} catch (e) {
  failed++;
  console.error("  FAIL  notes page: " + (e && e.stack ? e.stack : e));
  if (serverLog) console.error("server log:\n" + serverLog.split("\n").slice(-30).join("\n"));
} finally {
  if (context) await context.close().catch(() => {});
  await stopServer();
  fs.rmSync(tmp, { recursive: true, force: true });
  clearTimeout(guard);
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
