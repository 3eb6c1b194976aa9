// The reference WebSocket echo server of tests/bench/bench_ws.sh: npm's
// `ws` on Debian's node, every message sent back as it came (text as
// text, binary as binary), no compression (ws's server default), and a
// 200 on plain HTTP GETs so the bench can tell it is up.
//
//   node tests/bench/ws_echo_node.mjs PORT
import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2]);
const server = http.createServer((req, res) => {
    res.writeHead(200, { "Content-Type": "text/plain" });
    res.end("ok\n");
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (ws) => {
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on("error", () => {});
});
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => process.exit(0));
