// A real WHATWG EventSource client (npm `eventsource`) following tickflow's /v1/stream through
// a loopback proxy that cuts the connection at random byte offsets of the response (so in the
// middle of an event, between two events of one tick, or between ticks). The client reconnects
// by itself after the server's `retry` and resumes with Last-Event-ID, as browsers do.
//
// Usage: node sse-cuts.mjs <clients-dir> <stream-url> <cuts> <out.json> [seed]
// Writes {"events": [[connection, id, pair], ...], "gaps": [...], "cuts": n, "connections": n}
// to out.json once `cuts` cuts happened and an uncut connection then received 8 more events.
// tests/integration/test_sse_clients.c checks the events against Redis's history streams.
import fs from "node:fs";
import net from "node:net";
import { createRequire } from "node:module";

const [clientsDir, streamUrl, cutsArg, outPath, seedArg] = process.argv.slice(2);
if (!clientsDir || !streamUrl || !cutsArg || !outPath) {
    console.error("usage: node sse-cuts.mjs <clients-dir> <stream-url> <cuts> <out.json> [seed]");
    process.exit(2);
}
const { EventSource } = createRequire(`${clientsDir}/package.json`)("eventsource");
const cutsWanted = Number(cutsArg);
const deadline = Date.now() + 150_000;

// mulberry32: a seeded generator, so a failing run can be repeated with its seed.
let seed = Number(seedArg ?? Date.now()) >>> 0;
console.error(`sse-cuts: seed ${seed}`);
function random() {
    seed = (seed + 0x6d2b79f5) >>> 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const upstream = new URL(streamUrl);
let connections = 0;
let cuts = 0;

// Each connection forwards the response headers whole, then a random number of body bytes
// (1..3000: a tick of the demo's pairs is about 1.5 kB), then closes both sides.
const proxy = net.createServer((client) => {
    connections++;
    const server = net.connect(Number(upstream.port), upstream.hostname);
    let head = Buffer.alloc(0);
    let bodyBudget = cuts < cutsWanted ? 1 + Math.floor(random() * 3000) : Infinity;
    const close = () => {
        client.destroy();
        server.destroy();
    };
    client.on("error", close);
    server.on("error", close);
    client.on("close", close);
    server.on("close", close);
    client.pipe(server);
    server.on("data", (chunk) => {
        if (head !== null) {
            head = Buffer.concat([head, chunk]);
            const end = head.indexOf("\r\n\r\n");
            if (end < 0)
                return;
            client.write(head.subarray(0, end + 4));
            chunk = head.subarray(end + 4);
            head = null;
        }
        if (chunk.length < bodyBudget) {
            bodyBudget -= chunk.length;
            client.write(chunk);
            return;
        }
        client.write(chunk.subarray(0, bodyBudget));
        cuts++;
        close();
    });
});
await new Promise((resolve) => proxy.listen(0, "127.0.0.1", resolve));
const proxied = new URL(upstream.pathname, `http://127.0.0.1:${proxy.address().port}`);

const events = [];
const gaps = [];
let afterLastCut = 0;
const es = new EventSource(proxied.href);
let timer = null;

const finished = new Promise((resolve, reject) => {
    es.addEventListener("premium", (e) => {
        const p = JSON.parse(e.data);
        events.push([connections, e.lastEventId, `${p.krw_exchange}:${p.global_exchange}:${p.symbol}`]);
        if (cuts >= cutsWanted && ++afterLastCut >= 8)
            resolve();
    });
    es.addEventListener("gap", (e) => gaps.push({ connection: connections, ...JSON.parse(e.data) }));
    timer = setInterval(() => {
        if (Date.now() > deadline) {
            reject(new Error(`timed out: ${cuts} of ${cutsWanted} cuts, ${events.length} events`));
        }
    }, 250);
});

try {
    await finished;
} catch (err) {
    console.error(`sse-cuts: ${err.message}`);
    process.exitCode = 1;
} finally {
    clearInterval(timer);
    es.close();
    proxy.close();
}
fs.writeFileSync(outPath, JSON.stringify({ events, gaps, cuts, connections }));
console.error(`sse-cuts: ${cuts} cuts, ${connections} connections, ${events.length} events, ` +
              `${gaps.length} gaps`);
process.exit(process.exitCode ?? 0);
