// What the browser tests stand on: the real beian binary (`serve`, SQLite in a temp data
// dir, manual clock, the face check over HTTP to a fake this file runs), tokens from
// `beian token`, seeding over HTTP, and Chromium driven by playwright-core.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, existsSync, mkdirSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "..", "..");
export const screenshots = join(here, "screenshots");

/** The binary: $BEIAN_BIN, else target/debug/beian under $CARGO_TARGET_DIR or the repo. */
export function binary() {
  if (process.env.BEIAN_BIN) return process.env.BEIAN_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(repoRoot, "target");
  const bin = join(target, "debug", "beian");
  if (!existsSync(bin)) throw new Error(`no ${bin}: run cargo build first (or set BEIAN_BIN)`);
  return bin;
}

/** Polls `check` until it returns a truthy value or `ms` pass. */
export async function until(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try { last = await check(); if (last) return last; } catch (e) { last = e; }
    await new Promise(r => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last && (last.message || JSON.stringify(last))})`);
}

/** A face provider over real HTTP: 503 while `up` is false, else passes unless `fail...`. */
export async function fakeFace() {
  const face = { up: true, calls: 0 };
  face.server = createServer((req, res) => {
    let body = "";
    req.on("data", c => { body += c; });
    req.on("end", () => {
      face.calls += 1;
      if (!face.up) { res.writeHead(503); return res.end("down for the test"); }
      const { certify_id } = JSON.parse(body || "{}");
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ passed: !String(certify_id).startsWith("fail"), score: 0.9 }));
    });
  });
  await new Promise(r => face.server.listen(0, "127.0.0.1", r));
  face.url = `http://127.0.0.1:${face.server.address().port}/verify`;
  return face;
}

async function freePort() {
  const s = createServer();
  await new Promise(r => s.listen(0, "127.0.0.1", r));
  const port = s.address().port;
  await new Promise(r => s.close(r));
  return port;
}

/** Starts `beian serve`; `stop()` ends it and removes its data dir. */
export async function startService(faceUrl) {
  const dir = mkdtempSync(join(tmpdir(), "beian-ui-"));
  const port = await freePort();
  const env = {
    ...process.env,
    BEIAN__HTTP__ADDR: `127.0.0.1:${port}`,
    BEIAN__DATA_DIR: dir,
    BEIAN__DATABASE__URL: `sqlite://${join(dir, "beian.db")}`,
    BEIAN__SMS__OUTBOX_FILE: join(dir, "sms-outbox.ndjson"),
    BEIAN__CLOCK__MANUAL: "true",
    BEIAN__FACE__PROVIDER: "http",
    BEIAN__FACE__URL: faceUrl,
    BEIAN__JOBS__FACE__MAX_ATTEMPTS: "1",
    BEIAN__QUEUE__POLL_INTERVAL_MS: "100",
    BEIAN__LOG__LEVEL: "warn",
    BEIAN__LOG__FORMAT: "json",
  };
  const bin = binary();
  const child = spawn(bin, ["serve"], { cwd: repoRoot, env, stdio: ["ignore", "inherit", "inherit"] });
  const base = `http://127.0.0.1:${port}`;
  await until("the service's /healthz", async () => (await fetch(base + "/healthz")).ok, 30000);
  const token = (sub, role) =>
    execFileSync(bin, ["token", "--sub", sub, "--role", role], { cwd: repoRoot, env }).toString().trim();
  return {
    base, dir, token,
    outbox: () => readFileSync(env.BEIAN__SMS__OUTBOX_FILE, "utf8").trim().split("\n").map(l => JSON.parse(l)),
    async stop() {
      child.kill("SIGTERM");
      await new Promise(r => (child.exitCode !== null ? r() : child.once("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A JSON call; answers `{status, body}`. */
export async function call(svc, method, path, token, body, headers = {}) {
  const res = await fetch(svc.base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { "Content-Type": "application/json" } : {}), ...headers },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function expectStatus(what, answer, ...statuses) {
  if (!statuses.includes(answer.status)) {
    throw new Error(`${what}: ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  return answer.body;
}

/** A vehicle owned by someone else and a driver `sub` who files it; the filing reaches `code_verified`. */
export async function fileAndVerify(svc, sys, { sub, plate, ownerPhone, filerId, key }) {
  const vehicle = {
    owner_id_number: "110101199003071234", owner_name: "张小三", owner_phone: ownerPhone,
    owner_kind: "person", engine_number: "LB1234567890", usage: "non_operating", status: "normal",
  };
  expectStatus("vehicle", await call(svc, "PUT", `/v1/registry/vehicles/02/${encodeURIComponent(plate)}`, sys, vehicle), 200, 201);
  const driver = {
    name: "李小四", id_number: filerId, phone: "13912345678", licence_number: filerId,
    licence_status: "valid", points: 0,
  };
  expectStatus("driver", await call(svc, "PUT", `/v1/registry/drivers/${sub}`, sys, driver), 200, 201);
  const user = svc.token(sub, "user");
  const filing = expectStatus("filing", await call(svc, "POST", "/v1/filings", user, {
    method: "sms", plate_type: "02", plate_number: plate, engine_last6: "567890", relationship: "friend",
  }, { "Idempotency-Key": key }), 202);
  const text = await until("the owner's code in the outbox", () =>
    svc.outbox().find(m => m.phone === ownerPhone && m.template === "filing_code"));
  expectStatus("code", await call(svc, "POST", `/v1/filings/${filing.id}/code`, user, { code: text.params.code }), 200);
  return { id: filing.id, user };
}

/** Waits for the filing to reach `status` (as its filer sees it). */
export async function filingReaches(svc, filing, status) {
  return until(`filing ${filing.id} ${status}`, async () => {
    const { body } = await call(svc, "GET", `/v1/filings/${filing.id}`, filing.user);
    return body && body.status === status && body;
  });
}

/** Uploads the two photos (real images, so a browser can show them). */
export async function uploadPhotos(svc, filing, png, jpeg) {
  const form = new FormData();
  form.append("id_document", new Blob([png], { type: "image/png" }), "id.png");
  form.append("holding_photo", new Blob([jpeg], { type: "image/jpeg" }), "holding.jpg");
  const res = await fetch(`${svc.base}/v1/filings/${filing.id}/documents`, {
    method: "POST", headers: { Authorization: `Bearer ${filing.user}` }, body: form,
  });
  const body = await res.json();
  if (res.status !== 202) throw new Error(`upload: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** Chromium with a fresh profile directory; `close()` removes it. */
export async function browser() {
  const profile = mkdtempSync(join(tmpdir(), "beian-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  mkdirSync(screenshots, { recursive: true });
  return {
    context,
    async close() { await context.close(); rmSync(profile, { recursive: true, force: true }); },
  };
}

/** Two real tiny photos made by Chromium's own encoders (a PNG and a JPEG, 4x3 pixels). */
export async function tinyPhotos(page) {
  const [png, jpeg] = await page.evaluate(() => {
    const canvas = document.createElement("canvas");
    canvas.width = 4; canvas.height = 3;
    const g = canvas.getContext("2d");
    g.fillStyle = "#1f5fbf"; g.fillRect(0, 0, 4, 3);
    g.fillStyle = "#f5c518"; g.fillRect(1, 1, 2, 1);
    return [canvas.toDataURL("image/png"), canvas.toDataURL("image/jpeg", 0.9)];
  });
  const bytes = url => Buffer.from(url.split(",")[1], "base64");
  return { png: bytes(png), jpeg: bytes(jpeg) };
}
