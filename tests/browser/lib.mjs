// lib.mjs - what the node tests share: a coserve master (any workers, apps,
// listen addresses) in a temp dir, a real nginx running the shipped
// deploy/nginx/coserve.conf (its four defaults replaced, as
// tests/deploy/deploy_util.h does), bounded waits, and the tally that
// ends in "browser: N passed, N failed".
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// Relative paths in the environment are from the repository's root (where
// make runs; run.sh changes to tests/browser).
export const BIN = path.resolve(ROOT, process.env.COSERVE_BIN || "build/coserve");
export const APPS = path.resolve(ROOT, process.env.COSERVE_APPS || "build/apps");
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const NGINX = process.env.NGINX_BIN || "/usr/sbin/nginx";
// The pages served (a broken copy shows a test can fail).
export const WWW = path.resolve(ROOT, process.env.COSERVE_WWW || "www");
export const GUARD_MS = 15000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Polls fn until it returns a truthy value; fails with what() after the
// guard.
export async function waitFor(fn, what, ms = GUARD_MS) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() >= end)
      throw new Error("timed out waiting for " + (typeof what === "function" ? await what() : what));
    await sleep(25);
  }
}

export function tempDir(name) {
  return fs.mkdtempSync(path.join(os.tmpdir(), `coserve-${name}-`));
}

const procs = [];

// SIGKILLs every process started here and its children (nginx's workers
// outlive their master), for the hang guard.
export function killAll() {
  for (const p of procs) {
    if (!p.running) continue;
    for (const c of children(p.pid)) {
      try {
        process.kill(c, "SIGKILL");
      } catch {
        // gone already
      }
    }
    p.child.kill("SIGKILL");
  }
}

// A process whose output is kept (the tail goes in failure messages).
class Proc {
  constructor(argv, opts) {
    procs.push(this);
    this.log = "";
    this.child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], ...opts });
    this.child.stdout.on("data", (d) => { this.log += d; });
    this.child.stderr.on("data", (d) => { this.log += d; });
    this.exited = new Promise((r) => this.child.once("exit", (code, sig) => r({ code, sig })));
  }
  get pid() { return this.child.pid; }
  get running() { return this.child.exitCode === null && this.child.signalCode === null; }
  tail(n = 30) { return this.log.split("\n").slice(-n).join("\n"); }
  // Signal, then wait (bounded) for the exit; SIGKILL if it did not.
  async stop(sig = "SIGTERM", ms = 15000) {
    if (!this.running) return this.exited;
    this.child.kill(sig);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), ms);
    const st = await this.exited;
    clearTimeout(timer);
    return st;
  }
}

// The live children of pid (its workers), from /proc.
export function children(pid) {
  const out = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
    } catch {
      continue;
    }
    const [state, ppid] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    if (Number(ppid) === pid && state !== "Z" && state !== "X") out.push(Number(d));
  }
  return out.sort();
}

// Starts a coserve master in dir with `apps` (.so names) linked into
// dir/apps, listening on a free TCP port and on dir/coserve.sock.
// opts: workers, www (a dir or "off"), args (more flags), env.
export async function startCoserve(dir, apps, opts = {}) {
  const appsDir = path.join(dir, "apps");
  fs.mkdirSync(appsDir, { recursive: true });
  check(fs.existsSync(BIN), `${BIN} missing (make build/coserve apps)`);
  for (const so of apps) {
    const from = path.resolve(APPS, so);
    check(fs.existsSync(from), `${from} missing (make build/coserve apps)`);
    fs.symlinkSync(from, path.join(appsDir, so));
  }
  const workers = opts.workers || 1;
  const sock = path.join(dir, "coserve.sock");
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const p = new Proc([
      BIN, "--listen", `127.0.0.1:${port}`, "--listen", `unix:${sock}`,
      "--apps", appsDir, "--www", opts.www || WWW,
      "--workers", String(workers), "--access-log", "off", ...(opts.args || []),
    ], { env: { ...process.env, COSERVE_NOTES_DB: path.join(dir, "notes.db"), ...(opts.env || {}) } });
    const base = `http://127.0.0.1:${port}`;
    const end = Date.now() + 20000;
    for (;;) {
      if (!p.running) break;
      const serving = (p.log.match(/serving on/g) || []).length;
      if (serving >= workers && children(p.pid).length === workers) {
        try {
          await fetch(base + "/hello");
          return Object.assign(p, { base, port, sock, workers });
        } catch {
          // not listening yet
        }
      }
      check(Date.now() < end, "coserve did not come up:\n" + p.tail());
      await sleep(25);
    }
    check(attempt < 8 && /Address already in use/.test(p.log), "coserve exited at startup:\n" + p.tail());
  }
}

// What a process is doing and which sockets it holds, for a failure's
// message.
export function describe(pid) {
  let out = `process ${pid}:`;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    out += " state " + stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
    out += ", wchan " + fs.readFileSync(`/proc/${pid}/wchan`, "utf8");
  } catch {
    return out + " gone";
  }
  const ss = spawnSync("ss", ["-tanpx"], { encoding: "utf8" });
  const mine = (ss.stdout || "").split("\n").filter((l) => l.includes(`pid=${pid},`));
  return out + "\n" + mine.join("\n");
}

// Waits until the master's workers are `n` processes none of which is in
// old (a reload finished); returns them.
export async function waitReplaced(server, old) {
  return waitFor(() => {
    const now = children(server.pid);
    return now.length === server.workers && now.every((w) => !old.includes(w)) && now;
  }, () => "new workers after the reload:\n" + server.tail() + "\n" +
    children(server.pid).filter((w) => old.includes(w)).map(describe).join("\n"));
}

// Runs nginx on deploy/nginx/coserve.conf with its defaults replaced: the
// listen address, the unix and TCP upstreams (coserve's), the www root.
export async function startNginx(dir, coserve, www) {
  check(fs.existsSync(NGINX), `no nginx at ${NGINX} (apt-get install nginx-light)`);
  const ndir = path.join(dir, "nginx");
  fs.mkdirSync(path.join(ndir, "tmp"), { recursive: true });
  fs.mkdirSync(path.join(ndir, "logs"), { recursive: true });
  const src = process.env.COSERVE_NGINX_CONF || path.join(ROOT, "deploy/nginx/coserve.conf");
  const site = fs.readFileSync(src, "utf8");
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const keys = [
      ["listen 80;", `listen 127.0.0.1:${port};`],
      ["unix:/run/coserve/coserve.sock", `unix:${coserve.sock}`],
      ["127.0.0.1:8000", `127.0.0.1:${coserve.port}`],
      ["/srv/coserve/www", www],
    ];
    let conf = site;
    for (const [from, to] of keys) {
      // else the variant would reach the system's coserve, not ours
      check(conf.includes(from), `${src} no longer holds "${from}" (its default, which tests replace)`);
      conf = conf.split(from).join(to);
    }
    fs.writeFileSync(path.join(ndir, "coserve.conf"), conf);
    const errorLog = path.join(ndir, "error.log");
    const user = process.geteuid && process.geteuid() === 0 ? "user root;\n" : "";
    fs.writeFileSync(path.join(ndir, "nginx.conf"),
      "# written by tests/browser: the site is deploy/nginx/coserve.conf\n" +
      `daemon off;\nmaster_process on;\nworker_processes 1;\n${user}` +
      `pid ${ndir}/nginx.pid;\nerror_log ${errorLog} info;\n` +
      "events { worker_connections 1024; }\nhttp {\n" +
      `    access_log ${ndir}/access.log;\n` +
      "    default_type application/octet-stream;\n" +
      (fs.existsSync("/etc/nginx/mime.types") ? "    include /etc/nginx/mime.types;\n"
        : "    types { text/html html; text/css css; application/javascript js; }\n") +
      `    client_body_temp_path ${ndir}/tmp/body;\n    proxy_temp_path ${ndir}/tmp/proxy;\n` +
      `    fastcgi_temp_path ${ndir}/tmp/fastcgi;\n    uwsgi_temp_path ${ndir}/tmp/uwsgi;\n` +
      `    scgi_temp_path ${ndir}/tmp/scgi;\n    include ${ndir}/coserve.conf;\n}\n`);
    fs.writeFileSync(errorLog, "");
    const p = new Proc([NGINX, "-p", ndir, "-c", path.join(ndir, "nginx.conf"), "-e", errorLog], {});
    const base = `http://127.0.0.1:${port}`;
    const end = Date.now() + 20000;
    for (;;) {
      if (!p.running) break;
      if (fs.readFileSync(errorLog, "utf8").includes("start worker process ")) {
        try {
          // a static file: no upstream connection is opened (and kept)
          await fetch(base + "/");
          return Object.assign(p, { base, port, errorLog });
        } catch {
          // not listening yet
        }
      }
      check(Date.now() < end, "nginx did not come up:\n" + fs.readFileSync(errorLog, "utf8"));
      await sleep(25);
    }
    const why = p.log + fs.readFileSync(errorLog, "utf8");
    check(attempt < 8 && /Address already in use/.test(why), "nginx exited at startup:\n" + why);
  }
}

// Runs named async cases one after the other; prints one line each and,
// last, "browser: N passed, N failed"; exits non-zero on a failure. A
// whole-run guard turns a hang into a failure. cleanup runs at the end.
export async function runCases(cases, cleanup, guardMs = 300000) {
  let passed = 0;
  let failed = 0;
  const guard = setTimeout(() => {
    console.error(`browser: the test hung (${guardMs / 1000} s)`);
    console.log(`browser: ${passed} passed, ${failed + 1} failed`);
    killAll();
    process.exit(1);
  }, guardMs);
  for (const [name, fn] of cases) {
    try {
      await fn();
      passed++;
      console.log("  ok    " + name);
    } catch (e) {
      failed++;
      console.error("  FAIL  " + name + ": " + (e && e.stack ? e.stack : e));
    }
  }
  try {
    await cleanup();
  } catch (e) {
    failed++;
    console.error("  FAIL  cleanup: " + (e && e.stack ? e.stack : e));
  }
  clearTimeout(guard);
  console.log(`browser: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
