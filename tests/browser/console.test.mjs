// The web console in Chromium against the real binary: an admin replays a dead job, a
// reviewer claims and approves the most urgent filing looking at both photos, a plain user
// sees no admin pages. Each test saves a screenshot under tests/browser/screenshots/.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  browser, call, fakeFace, fileAndVerify, filingReaches, screenshots, startService, tinyPhotos,
  until, uploadPhotos,
} from "./harness.mjs";

let face, svc, chrome, reviewed, held, replayed, deadJob;

before(async () => {
  face = await fakeFace();
  svc = await startService(face.url);
  chrome = await browser();
  const sys = svc.token("sys", "system");
  const admin = svc.token("ops1", "admin");

  // A filing for the review desk: the face check fails, the photos go up, it is under review.
  reviewed = await fileAndVerify(svc, sys, {
    sub: "U1", plate: "京A12345", ownerPhone: "13812345678", filerId: "110101199205061234", key: "ui-1",
  });
  assert.equal((await call(svc, "POST", `/v1/filings/${reviewed.id}/face`, reviewed.user, { certify_id: "fail-1" })).status, 202);
  await filingReaches(svc, reviewed, "documents_required");
  const page = await chrome.context.newPage();
  const { png, jpeg } = await tinyPhotos(page);
  await page.close();
  await uploadPhotos(svc, reviewed, png, jpeg);

  // A second one, entered later (so less urgent), claimed by a supervisor.
  held = await fileAndVerify(svc, sys, {
    sub: "U3", plate: "京C34567", ownerPhone: "13812345670", filerId: "110101198801011234", key: "ui-3",
  });
  assert.equal((await call(svc, "POST", `/v1/filings/${held.id}/face`, held.user, { certify_id: "fail-3" })).status, 202);
  await filingReaches(svc, held, "documents_required");
  await uploadPhotos(svc, held, png, jpeg);
  assert.equal((await call(svc, "POST", `/v1/reviews/${held.id}/claim`, svc.token("sup1", "supervisor"))).status, 200);

  // A dead job: the face provider is down and the face queue allows one attempt.
  replayed = await fileAndVerify(svc, sys, {
    sub: "U2", plate: "京B23456", ownerPhone: "13812345679", filerId: "110101199507081234", key: "ui-2",
  });
  face.up = false;
  assert.equal((await call(svc, "POST", `/v1/filings/${replayed.id}/face`, replayed.user, { certify_id: "ok-2" })).status, 202);
  deadJob = await until("a dead face.verify job", async () => {
    const { body } = await call(svc, "GET", "/v1/admin/jobs?state=dead", admin);
    return body.items.find(j => j.queue === "face");
  });
});

after(async () => {
  await chrome?.close();
  await svc?.stop();
  face?.server.close();
});

/** A new tab signed in with the token in the URL fragment. */
async function signedIn(sub, role, lang) {
  const page = await chrome.context.newPage();
  const errors = [];
  page.on("pageerror", e => errors.push(e));
  page.on("console", m => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${svc.base}/ui/${lang ? `?lang=${lang}` : ""}#token=${svc.token(sub, role)}`);
  page.errors = errors;
  return page;
}

test("an admin sees the queues, opens the dead job and retries it; it leaves the dead list", async () => {
  const page = await signedIn("ops1", "admin");
  const admin = svc.token("ops1", "admin");
  const faceRow = page.locator('tr[data-queue="face"]');
  await faceRow.waitFor();
  assert.match(await faceRow.innerText(), /face/);
  assert.equal(await page.locator('nav a[href="#/queues"]').innerText(), "队列");

  await page.click('nav a[href="#/jobs"]');
  const row = page.locator(`tr[data-job="${deadJob.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /face\.verify/);
  await row.locator("a").click();
  await page.locator("#retry").waitFor();
  const payload = await page.locator("#payload").innerText();
  assert.match(payload, new RegExp(replayed.id), "the payload names the filing");
  assert.doesNotMatch(payload, /13812345679|110101199507081234/, "no personal data in the payload");
  assert.match(await page.locator("table").innerText(), /503/, "the attempt's error is shown");
  await page.screenshot({ path: join(screenshots, "admin-dead-job.png"), fullPage: true });

  face.up = true; // the cause is fixed: now the replay can pass
  await page.click("#retry");
  await page.waitForURL(/#\/jobs$/);
  await until("the job to leave the dead list", async () =>
    (await page.locator(`tr[data-job="${deadJob.id}"]`).count()) === 0 &&
    (await page.locator("#flash").innerText()).includes(deadJob.id));
  const dead = (await call(svc, "GET", "/v1/admin/jobs?state=dead", admin)).body.items;
  assert.ok(!dead.some(j => j.id === deadJob.id), "the API no longer lists it as dead");
  await filingReaches(svc, replayed, "approved");
  await page.click('nav a[href="#/queues"]');
  await faceRow.waitFor();
  await page.screenshot({ path: join(screenshots, "admin-queues.png"), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("a reviewer claims the most urgent filing, sees both photos, approves it", async () => {
  const page = await signedIn("rev1", "reviewer");
  const row = page.locator(`tr[data-filing="${reviewed.id}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /京A12345/);
  const heldRow = page.locator(`tr[data-filing="${held.id}"]`);
  assert.match(await heldRow.innerText(), /已被 sup1 领取/, "a claim held by someone else shows as such");
  assert.equal(await heldRow.locator("button.claim").count(), 0, "and it offers no claim");
  await page.screenshot({ path: join(screenshots, "reviewer-desk.png"), fullPage: true });

  await page.click("#claim-next"); // click 1: claim the most urgent, open it
  await page.waitForURL(new RegExp(`#/reviews/${reviewed.id}$`));
  await page.locator("#approve").waitFor();
  await until("both photos loaded", () => page.evaluate(() => {
    const imgs = [...document.querySelectorAll("#photos img")];
    return imgs.length === 2 && imgs.every(i => i.complete && i.naturalWidth > 0);
  }));
  const kinds = await page.locator("#photos img").evaluateAll(imgs => imgs.map(i => [i.dataset.kind, i.naturalWidth]));
  assert.deepEqual(kinds.map(k => k[0]).sort(), ["holding_photo", "id_document"]);
  assert.ok(kinds.every(k => k[1] === 4), `natural widths ${JSON.stringify(kinds)}`);
  const facts = await page.locator("#facts").innerText();
  assert.match(facts, /rev1|我/);
  assert.match(await page.locator("#timeline").innerText(), /under_review/);
  await page.screenshot({ path: join(screenshots, "reviewer-review.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(screenshots, "reviewer-review-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 800 });

  await page.click("#approve"); // click 2: the decision
  await page.waitForURL(/#\/reviews$/);
  await heldRow.waitFor();
  await until("the decided filing to leave the desk", async () => (await row.count()) === 0);
  const filing = await filingReaches(svc, reviewed, "approved");
  assert.equal(filing.status, "approved");
  const review = (await call(svc, "GET", `/v1/reviews/${reviewed.id}`, svc.token("rev1", "reviewer"))).body;
  assert.equal(review.review.decision, "approved");
  assert.equal(review.review.decided_by, "rev1");
  await page.screenshot({ path: join(screenshots, "reviewer-after-approval.png"), fullPage: true });
  assert.deepEqual(page.errors, []);
  await page.close();
});

test("a plain user sees no admin pages; a bad token gets a clear message", async () => {
  const page = await signedIn("U1", "user", "en");
  await page.locator("#no-pages").waitFor();
  assert.match(await page.locator("#no-pages").innerText(), /no pages for this role/);
  assert.equal(await page.locator("nav a").count(), 0);
  for (const hash of ["#/queues", "#/jobs", "#/reviews"]) {
    await page.evaluate(h => { location.hash = h; }, hash);
    await page.locator("#no-pages").waitFor();
    assert.equal(await page.locator("table").count(), 0, `${hash} shows nothing`);
  }
  await page.screenshot({ path: join(screenshots, "user-no-admin.png"), fullPage: true });

  // A token the service does not accept (signed with another key): the sign-in form says so.
  const [head, , ] = svc.token("ops1", "admin").split(".");
  const forged = [head, Buffer.from(JSON.stringify({ sub: "ops1", role: "admin", exp: 4102444800 })).toString("base64url"), "c2ln"].join(".");
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${svc.base}/ui/?lang=en#token=${forged}`);
  await page.locator("#signin-error").waitFor();
  assert.match(await page.locator("#signin-error").innerText(), /refused the token/);
  await page.screenshot({ path: join(screenshots, "bad-token.png"), fullPage: true });
  await page.close();
});
