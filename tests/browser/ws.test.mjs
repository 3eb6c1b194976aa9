// ws.test.mjs - /ws/echo (apps/wsecho) driven by another implementation
// of RFC 6455 / 7692: the npm `ws` package as the client. For
// permessage-deflate off, on, and on without context takeover for the
// client, the server or both: text and binary echo, a message at the size
// limit and one over it (1009), fragmented sends, pings, close codes, bad
// UTF-8 (1007). With deflate on, the bytes on the wire show whether the
// server keeps its compression context between messages as negotiated.
// Then the server's own pings (a short --ws-ping-interval).
//
//   node tests/browser/ws.test.mjs      (tests/browser/run.sh sets it up)
//
// Prints "browser: N passed, N failed" last; exits non-zero on failure.
import crypto from "node:crypto";
import fs from "node:fs";

import WebSocket from "ws";

import { GUARD_MS, check, runCases, startCoserve, tempDir } from "./lib.mjs";

const LIMIT = 65536; // --ws-max-message

const tmp = tempDir("ws");
let server = null;
let pinger = null;

// Opens a WebSocket; resolves once open. Every message, close and error
// is queued so the test reads them in order, each wait bounded.
function open(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: GUARD_MS, ...options });
    // the server's answer as sent (ws.extensions holds the names alone)
    ws.on("upgrade", (res) => { ws.answer = res.headers["sec-websocket-extensions"] || ""; });
    const q = [];
    let wake = null;
    const push = (ev) => {
      q.push(ev);
      if (wake) wake();
    };
    ws.on("message", (data, isBinary) => push({ kind: "message", data, isBinary }));
    ws.on("close", (code, reason) => push({ kind: "close", code, reason: reason.toString() }));
    ws.on("error", (err) => push({ kind: "error", err }));
    ws.next = async (what) => {
      const end = Date.now() + GUARD_MS;
      while (!q.length) {
        check(Date.now() < end, "nothing came while waiting for " + what);
        await new Promise((r) => {
          wake = r;
          setTimeout(r, 100);
        });
        wake = null;
      }
      return q.shift();
    };
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

async function expectMessage(ws, want, isBinary, what) {
  const ev = await ws.next(what);
  check(ev.kind === "message", `${what}: got ${ev.kind} ${ev.code || ev.err || ""}`);
  check(ev.isBinary === isBinary, `${what}: came back ${ev.isBinary ? "binary" : "text"}`);
  check(Buffer.compare(ev.data, Buffer.from(want)) === 0,
    `${what}: came back changed (${ev.data.length} bytes, sent ${Buffer.from(want).length})`);
}

async function expectClose(ws, code, what) {
  let ev = await ws.next(what);
  while (ev.kind === "error") ev = await ws.next(what); // ws reports the close's cause first
  check(ev.kind === "close", `${what}: got a ${ev.kind}, not the close`);
  check(ev.code === code, `${what}: close code ${ev.code}, expected ${code} (${ev.reason})`);
}

// The bytes the server sent for one echo of msg (frame headers included).
async function wireBytesOfEcho(ws, msg) {
  const before = ws._socket.bytesRead;
  ws.send(msg);
  await expectMessage(ws, msg, false, "echo for the byte count");
  return ws._socket.bytesRead - before;
}

const MODES = [
  ["deflate off", false],
  ["deflate on", { threshold: 0 }],
  ["deflate, client_no_context_takeover", { threshold: 0, clientNoContextTakeover: true }],
  ["deflate, server_no_context_takeover", { threshold: 0, serverNoContextTakeover: true }],
  ["deflate, no context takeover either way",
    { threshold: 0, clientNoContextTakeover: true, serverNoContextTakeover: true }],
];

async function modeTest(deflate) {
  const url = server.base.replace("http:", "ws:") + "/ws/echo";
  const opts = { perMessageDeflate: deflate };
  const ws = await open(url, opts);

  // what was negotiated is what was asked
  const ext = ws.answer;
  if (!deflate) {
    check(ext === "", "extensions without deflate asked: " + ext);
  } else {
    check(/^permessage-deflate\b/.test(ext), "deflate not accepted: " + JSON.stringify(ext));
    check(/server_no_context_takeover/.test(ext) === !!deflate.serverNoContextTakeover,
      "server_no_context_takeover answer: " + ext);
    check(/client_no_context_takeover/.test(ext) === !!deflate.clientNoContextTakeover,
      "client_no_context_takeover answer: " + ext);
  }

  // text (multi-byte UTF-8 too), empty, binary
  for (const t of ["hello", "", "héllo wörld ✓ 𝄞", "x".repeat(125), "y".repeat(126), "z".repeat(65535)]) {
    ws.send(t);
    await expectMessage(ws, t, false, `text of ${t.length}`);
  }
  const bin = crypto.randomBytes(3000);
  ws.send(bin);
  await expectMessage(ws, bin, true, "binary");
  ws.send(Buffer.alloc(0));
  await expectMessage(ws, Buffer.alloc(0), true, "empty binary");

  // the same text several times: each message must inflate right whether
  // or not the client's context carries over
  const repeated = "the same sentence, again and again. ".repeat(30);
  for (let i = 0; i < 4; i++) {
    ws.send(repeated);
    await expectMessage(ws, repeated, false, `repeat ${i}`);
  }
  if (deflate) {
    // the server's context: kept, the second echo of a message is a
    // back-reference to the first (fewer bytes); reset, it is the same
    // bytes again
    const probe = crypto.randomBytes(600).toString("hex");
    const first = await wireBytesOfEcho(ws, probe);
    const second = await wireBytesOfEcho(ws, probe);
    if (deflate.serverNoContextTakeover)
      check(second === first, `no server takeover: echoes of ${first} then ${second} bytes`);
    else
      check(second < first, `server takeover: echoes of ${first} then ${second} bytes`);
  }

  // at the limit: incompressible and compressible
  const atLimit = crypto.randomBytes(LIMIT);
  ws.send(atLimit);
  await expectMessage(ws, atLimit, true, "random message at the limit");
  const zeros = Buffer.alloc(LIMIT, 0x61);
  ws.send(zeros, { binary: false });
  await expectMessage(ws, zeros, false, "text message at the limit");

  // fragmented: three frames, one message (a ping between fragments)
  ws.send("frag-", { fin: false });
  ws.ping("between");
  ws.send(Buffer.from("ment-"), { fin: false, binary: false });
  ws.send("ed", { fin: true });
  let ev = await ws.next("the fragmented echo");
  check(ev.kind === "message" && ev.data.toString() === "frag-ment-ed" && !ev.isBinary,
    "fragmented text: " + JSON.stringify(ev.data && ev.data.toString()));
  const parts = [crypto.randomBytes(1000), crypto.randomBytes(20000), crypto.randomBytes(1)];
  parts.forEach((p, i) => ws.send(p, { binary: true, fin: i === parts.length - 1 }));
  await expectMessage(ws, Buffer.concat(parts), true, "fragmented binary");

  // ping, answered with the same payload
  const pong = new Promise((r) => ws.once("pong", r));
  ws.ping(Buffer.from("are you there"));
  const got = await Promise.race([pong, new Promise((r) => setTimeout(() => r(null), GUARD_MS))]);
  check(got && got.toString() === "are you there", "pong: " + got);

  // a normal close, echoed
  ws.close(1000, "bye");
  await expectClose(ws, 1000, "close 1000");

  // an application's code is echoed too; a close with no code gets none
  let w = await open(url, opts);
  w.close(4001, "custom");
  await expectClose(w, 4001, "close 4001");
  w = await open(url, opts);
  w.close();
  await expectClose(w, 1005, "close without a code");

  // over the limit: 1009, compressible (small on the wire) or not
  w = await open(url, opts);
  w.send(crypto.randomBytes(LIMIT + 1));
  await expectClose(w, 1009, "random message over the limit");
  w = await open(url, opts);
  w.send(Buffer.alloc(LIMIT + 1, 0x61), { binary: false });
  await expectClose(w, 1009, "compressible message over the limit");
  w = await open(url, opts);
  w.send("a".repeat(LIMIT - 10), { fin: false });
  w.send("b".repeat(11), { fin: true });
  await expectClose(w, 1009, "fragments adding up to over the limit");

  // bad UTF-8 in a text message: 1007
  w = await open(url, opts);
  w.send(Buffer.from([0x61, 0xc3, 0x28]), { binary: false });
  await expectClose(w, 1007, "invalid UTF-8");
}

async function serverPings() {
  const url = pinger.base.replace("http:", "ws:") + "/ws/echo";
  const ws = await open(url, { perMessageDeflate: false });
  // ws answers pings by itself; the server's ping must come while idle
  const ping = new Promise((r) => ws.once("ping", r));
  const got = await Promise.race([ping, new Promise((r) => setTimeout(() => r("none"), GUARD_MS))]);
  check(got !== "none", "no ping from the server while idle");
  ws.send("still here");
  await expectMessage(ws, "still here", false, "echo after the server's ping");
  ws.close(1000);
  await expectClose(ws, 1000, "close after the pings");
}

const cases = [
  ["ws: server up", async () => {
    server = await startCoserve(tmp + "/a", ["wsecho.so", "hello.so"],
      { www: "off", args: ["--ws-max-message", String(LIMIT)] });
  }],
  ...MODES.map(([name, deflate]) => [
    `ws client, ${name}: echo, limit, fragments, ping, close codes`,
    async () => {
      check(server, "no server");
      await modeTest(deflate);
    }]),
  ["ws client: the server pings an idle WebSocket and it stays open", async () => {
    pinger = await startCoserve(tmp + "/b", ["wsecho.so", "hello.so"],
      { www: "off", args: ["--ws-ping-interval", "1s"] });
    await serverPings();
  }],
  ["ws: servers stop cleanly", async () => {
    for (const s of [server, pinger]) {
      if (!s) continue;
      const st = await s.stop("SIGTERM");
      check(st.code === 0, `coserve exited with ${JSON.stringify(st)}:\n${s.tail()}`);
      check(!/AddressSanitizer|runtime error|killed by signal|exited with status/.test(s.log),
        "coserve's log:\n" + s.tail());
    }
  }],
];

fs.mkdirSync(tmp + "/a");
fs.mkdirSync(tmp + "/b");
await runCases(cases, async () => {
  for (const s of [server, pinger]) if (s) await s.stop("SIGKILL");
  fs.rmSync(tmp, { recursive: true, force: true });
});
