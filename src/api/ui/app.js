// The web console: sign-in (token from `#token=...` or the form, kept in sessionStorage),
// the admin pages (queues, dead jobs, a job with its attempts and Retry) and the review desk
// (pending list, claim, both photos, approve or reject, the filing's history). It calls the
// /v1 endpoints with the bearer token; the role it shows pages for is read from the token's
// own payload (not secret to its holder) and the service still checks every call.
"use strict";

const LANG = new URLSearchParams(location.search).get("lang") === "en" ? "en" : "zh";
const TEXTS = window.BEIAN_TEXTS[LANG];
const t = (key, vars) =>
  (TEXTS[key] || key).replace(/\{(\w+)\}/g, (_, name) => (vars && vars[name]) || "");
const TOKEN_KEY = "beian.token";
const STAFF = ["reviewer", "supervisor"];
let refreshTimer = null;
let photoUrls = [];

// --- little DOM helpers (text is always set as text, never parsed as HTML) ----------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}
const main = () => document.getElementById("main");
function show(...nodes) { main().replaceChildren(...nodes.filter(n => n !== null && n !== undefined && n !== false)); }
function flash(text, isError) {
  const el = document.getElementById("flash");
  el.textContent = text || "";
  el.className = isError ? "error" : "";
  el.hidden = !text;
}
function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleString(LANG === "en" ? "en-GB" : "zh-CN", { hour12: false });
}
function table(columns, rows, rowAttrs) {
  return h("table", {},
    h("thead", {}, h("tr", {}, columns.map(c => h("th", { class: c.num ? "num" : null }, c.label)))),
    h("tbody", {}, rows.map(r => h("tr", rowAttrs ? rowAttrs(r) : {},
      columns.map(c => h("td", { class: c.num ? "num" : null, "data-label": c.label }, c.cell(r)))))));
}

// --- the token --------------------------------------------------------------------------------
function claimsOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(part), c => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims.role === "string" ? claims : null;
  } catch (_) { return null; }
}
function session() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const claims = token && claimsOf(token);
  return claims ? { token, sub: claims.sub, role: claims.role, exp: claims.exp } : null;
}
function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  renderSignIn(message);
}
class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || "HTTP " + status);
    this.status = status; this.code = problem && problem.code;
  }
}
async function api(method, path, body, extraHeaders) {
  const s = session();
  const headers = Object.assign({ Authorization: "Bearer " + (s ? s.token : "") }, extraHeaders);
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) { throw new ApiError(0, { detail: t("network") + e.message }); }
  if (res.status === 401) { signOut(t("token_refused")); throw new ApiError(401, { detail: t("token_refused") }); }
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : null;
  if (!res.ok) throw new ApiError(res.status, res.status === 403 ? { detail: t("forbidden"), code: data && data.code } : data);
  return data;
}
function failed(e) {
  if (e.status === 401) return; // the sign-in form is already shown
  show(h("p", { class: "error", id: "page-error" }, e.message + (e.code ? " (" + e.code + ")" : "")));
}

// --- sign in and the frame ----------------------------------------------------------------
function renderSignIn(message) {
  stopRefresh();
  renderFrame(null);
  const input = h("textarea", { id: "token", rows: 4, placeholder: t("token_placeholder"), autocomplete: "off" });
  const form = h("form", { class: "card signin", id: "signin", onsubmit: ev => {
    ev.preventDefault();
    signIn(input.value.trim());
  } },
  h("h1", {}, t("sign_in_title")),
  message ? h("p", { class: "error", id: "signin-error" }, message) : null,
  h("label", { for: "token" }, t("token_label")), input,
  h("div", { class: "actions" }, h("button", { type: "submit" }, t("sign_in"))));
  show(form);
}
function signIn(token) {
  const claims = claimsOf(token);
  if (!claims) return renderSignIn(t("token_bad"));
  if (claims.exp && claims.exp * 1000 < Date.now()) return renderSignIn(t("token_expired"));
  sessionStorage.setItem(TOKEN_KEY, token);
  if (location.hash === "#/" || !location.hash) route(); else location.hash = "#/";
}
function pagesFor(role) {
  if (role === "admin") return [["#/queues", "nav_queues"], ["#/jobs", "nav_dead"]];
  if (STAFF.includes(role)) return [["#/reviews", "nav_reviews"]];
  return [];
}
function renderFrame(s) {
  const nav = document.getElementById("nav");
  const here = location.hash.split("/").slice(0, 2).join("/");
  nav.replaceChildren(...(s ? pagesFor(s.role) : []).map(([href, key]) =>
    h("a", { href, class: here === href ? "active" : null }, t(key))));
  document.getElementById("who").textContent = s ? s.sub + " · " + t("role_" + s.role) : "";
  document.getElementById("signout").hidden = !s;
}
function stopRefresh() { if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; } }

// --- routing --------------------------------------------------------------------------------
async function route() {
  stopRefresh();
  photoUrls.forEach(URL.revokeObjectURL); photoUrls = [];
  const fragment = location.hash.slice(1);
  if (fragment.startsWith("token=")) {
    history.replaceState(null, "", location.pathname + location.search + "#/");
    return signIn(decodeURIComponent(fragment.slice(6)));
  }
  const s = session();
  if (!s) return renderSignIn();
  if (s.exp && s.exp * 1000 < Date.now()) return signOut(t("token_expired"));
  const [, page, id] = location.hash.split("/").map(decodeURIComponent);
  const allowed = pagesFor(s.role).map(([href]) => href.slice(2));
  if (!page) {
    const first = allowed[0];
    if (first) { location.hash = "#/" + first; return; }
  }
  renderFrame(s);
  if (!allowed.includes(page)) {
    return show(h("p", { class: "muted", id: "no-pages" }, allowed.length ? t("forbidden") : t("nothing_for_role")));
  }
  try {
    if (page === "queues") await queuesPage();
    else if (page === "jobs" && id) await jobPage(id);
    else if (page === "jobs") await deadJobsPage();
    else if (page === "reviews" && id) await reviewPage(id, s);
    else if (page === "reviews") await deskPage(s);
  } catch (e) { failed(e); }
}

// --- admin: queues, dead jobs, a job ------------------------------------------------------
async function queuesPage() {
  const draw = async () => {
    const data = await api("GET", "/v1/admin/queues");
    const n = key => ({ label: t(key), num: true, cell: q => q[key] });
    show(h("h1", {}, t("queues_title")),
      h("p", { class: "muted" }, t("auto_refresh") + " · " + t("updated") + " " + when(new Date().toISOString())),
      table([{ label: t("queue"), cell: q => q.queue }, n("ready"), n("running"), n("scheduled"),
        n("retrying"), { label: t("dead"), num: true, cell: q => q.dead ? h("a", { href: "#/jobs" }, q.dead) : 0 },
        n("done"), { label: t("throughput"), num: true, cell: q => q.throughput_per_minute }],
      data.items, q => ({ "data-queue": q.queue })));
  };
  await draw();
  refreshTimer = setInterval(() => draw().catch(failed), 5000);
}
async function deadJobs() {
  const items = [];
  let cursor = null;
  do {
    const page = await api("GET", "/v1/admin/jobs?state=dead&limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 5000);
  return items;
}
async function deadJobsPage() {
  const jobs = await deadJobs();
  show(h("h1", {}, t("dead_title")),
    jobs.length === 0 ? h("p", { class: "muted", id: "no-dead" }, t("no_dead")) :
      table([{ label: t("job"), cell: j => h("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, j.id) },
        { label: t("queue"), cell: j => j.queue }, { label: t("kind"), cell: j => j.kind },
        { label: t("attempts"), num: true, cell: j => j.attempts + "/" + j.max_attempts },
        { label: t("last_error"), cell: j => j.last_error || "" },
        { label: t("updated_at"), cell: j => when(j.updated_at) }], jobs, j => ({ "data-job": j.id })));
  refreshTimer = setInterval(() => { if (location.hash === "#/jobs") deadJobsPage().catch(failed); }, 5000);
}
async function jobPage(id) {
  const job = (await deadJobs()).find(j => j.id === id);
  if (!job) {
    return show(h("p", { class: "muted", id: "not-dead" }, t("not_dead")), h("a", { href: "#/jobs" }, t("back_dead")));
  }
  const took = a => {
    const ms = new Date(a.finished_at) - new Date(a.started_at);
    return isNaN(ms) ? "" : ms + " ms";
  };
  const retry = h("button", { id: "retry", type: "button", onclick: async () => {
    retry.disabled = true;
    try {
      const key = "ui-retry-" + id + "-" + Date.now();
      await api("POST", "/v1/admin/jobs/" + encodeURIComponent(id) + "/retry", undefined, { "Idempotency-Key": key });
      flash(t("retried") + id);
      location.hash = "#/jobs";
    } catch (e) { retry.disabled = false; flash(e.message, true); }
  } }, t("retry"));
  show(h("h1", {}, t("job_title") + " " + job.id),
    h("dl", { class: "facts card" },
      [["queue", job.queue], ["kind", job.kind], ["key", job.key], ["state", job.state],
        ["attempts", job.attempts + "/" + job.max_attempts], ["created_at", when(job.created_at)],
        ["updated_at", when(job.updated_at)], ["last_error", job.last_error || ""]]
        .map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)])),
    h("div", { class: "actions" }, retry, h("a", { href: "#/jobs" }, t("back_dead"))),
    h("h2", {}, t("payload")), h("pre", { id: "payload" }, JSON.stringify(job.payload, null, 2)),
    h("h2", {}, t("attempt_list")),
    table([{ label: t("attempt"), num: true, cell: a => a.attempt }, { label: t("started"), cell: a => when(a.started_at) },
      { label: t("finished"), cell: a => when(a.finished_at) }, { label: t("duration"), num: true, cell: took },
      { label: t("error"), cell: a => a.error || "" }], Array.isArray(job.history) ? job.history : []));
}

// --- the review desk ----------------------------------------------------------------------
function marks(r) {
  return [r.breached ? h("span", { class: "badge breach" }, t("breached")) : null,
    r.at_risk && !r.breached ? h("span", { class: "badge risk" }, t("at_risk")) : null];
}
function holder(r, s) {
  if (!r.claimed_by) return h("span", { class: "badge" }, t("unclaimed"));
  if (r.claimed_by === s.sub) return h("span", { class: "badge mine" }, t("mine"));
  return h("span", { class: "badge other" }, t("claimed_other", { who: r.claimed_by }));
}
async function claimAndOpen(filingId) {
  try {
    const lease = await api("POST", "/v1/reviews/" + encodeURIComponent(filingId) + "/claim");
    flash(t("claimed_ok") + when(lease.claim_expires_at));
    location.hash = "#/reviews/" + encodeURIComponent(filingId);
  } catch (e) { flash(e.message, true); if (location.hash === "#/reviews") route(); }
}
async function deskPage(s) {
  const data = await api("GET", "/v1/reviews?state=pending");
  const free = data.items.find(r => !r.claimed_by || r.claimed_by === s.sub);
  show(h("h1", {}, t("reviews_title")),
    h("div", { class: "actions" }, free ? h("button", { id: "claim-next", type: "button",
      onclick: () => claimAndOpen(free.filing_id) }, t("claim_next")) : null),
    data.items.length === 0 ? h("p", { class: "muted", id: "no-pending" }, t("no_pending")) :
      table([{ label: t("plate"), cell: r => r.plate_number + " (" + r.plate_type + ")" },
        { label: t("method"), cell: r => r.method }, { label: t("deadline"), cell: r => when(r.deadline) },
        { label: t("marks"), cell: marks }, { label: t("escalation"), num: true, cell: r => r.escalation_level },
        { label: t("claimed_by"), cell: r => holder(r, s) },
        { label: "", cell: r => h("span", { class: "actions" },
          r.claimed_by && r.claimed_by !== s.sub ? null :
            h("button", { type: "button", class: "claim", onclick: () => claimAndOpen(r.filing_id) },
              r.claimed_by === s.sub ? t("open") : t("claim_and_open")),
          h("a", { href: "#/reviews/" + encodeURIComponent(r.filing_id) }, t("open"))) }],
      data.items, r => ({ "data-filing": r.filing_id })));
  refreshTimer = setInterval(() => { if (location.hash === "#/reviews") deskPage(s).catch(failed); }, 15000);
}
async function photo(doc) {
  const img = h("img", { alt: t(doc.kind), "data-kind": doc.kind });
  const fig = h("figure", {}, img, h("figcaption", {}, t(doc.kind)));
  try {
    const res = await fetch(doc.href, { headers: { Authorization: "Bearer " + session().token } });
    if (!res.ok) throw new Error("HTTP " + res.status);
    const url = URL.createObjectURL(await res.blob());
    photoUrls.push(url);
    img.src = url;
  } catch (e) { fig.append(h("p", { class: "error" }, t("photo_failed") + ": " + e.message)); }
  return fig;
}
function timeline(d) {
  const events = d.filing.history.map(e => ({ at: e.at, who: e.cause, what: e.status }))
    .concat(d.audit.map(a => ({ at: a.at, who: a.actor, what: a.action + (a.detail ? ": " + a.detail : "") })))
    .sort((a, b) => new Date(a.at) - new Date(b.at));
  return h("ol", { class: "timeline", id: "timeline" }, events.map(e =>
    h("li", {}, h("time", { datetime: e.at }, when(e.at)), h("strong", {}, e.what), " · ", e.who)));
}
async function reviewPage(filingId, s) {
  const d = await api("GET", "/v1/reviews/" + encodeURIComponent(filingId));
  const r = d.review;
  const other = r.claimed_by && r.claimed_by !== s.sub;
  const party = p => h("dl", { class: "facts" }, [["name", p.name_masked], ["phone", p.phone_masked],
    ["id_number", p.id_number_masked]].map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v || "—")]));
  const reason = h("textarea", { id: "reason", rows: 2, maxlength: 500, placeholder: t("reason") });
  const decide = async (decision, button) => {
    if (decision === "reject" && !reason.value.trim()) return flash(t("reason_needed"), true);
    button.disabled = true;
    try {
      const body = decision === "reject" ? { decision, reason: reason.value.trim() } : { decision };
      const after = await api("POST", "/v1/reviews/" + encodeURIComponent(filingId) + "/decision", body);
      flash(t("decided") + t(after.review.decision) + " · " + after.filing.plate_number);
      location.hash = "#/reviews";
    } catch (e) { button.disabled = false; flash(e.message, true); }
  };
  const approve = h("button", { id: "approve", type: "button", disabled: other, onclick: () => decide("approve", approve) }, t("approve"));
  const reject = h("button", { id: "reject", type: "button", class: "danger", disabled: other, onclick: () => decide("reject", reject) }, t("reject"));
  const claim = !r.claimed_by && !r.decision ?
    h("button", { id: "claim", type: "button", class: "secondary", onclick: () => claimAndOpen(filingId).then(route) }, t("claim")) : null;
  show(h("h1", {}, t("review_title") + " · " + d.filing.plate_number),
    other ? h("p", { class: "error", id: "held" }, t("held_by_other", { who: r.claimed_by })) : null,
    h("div", { class: "grid" },
      h("div", { class: "card" }, h("dl", { class: "facts", id: "facts" },
        [["filing", d.filing.id], ["status", d.filing.status], ["method", d.filing.method],
          ["relationship", d.relationship], ["deadline", when(r.deadline)],
          ["marks", h("span", {}, marks(r))], ["escalation", r.escalation_level],
          ["claimed_by", holder(r, s)], ["claim_expires", when(r.claim_expires_at)],
          ["decision", r.decision ? t(r.decision) + (r.reason ? ": " + r.reason : "") : "—"]]
          .map(([k, v]) => [h("dt", {}, t(k)), h("dd", {}, v)]))),
      h("div", { class: "card" }, h("h2", {}, t("filer")), party(d.filer), h("h2", {}, t("owner")), party(d.owner))),
    r.decision ? null : h("div", { class: "card" }, h("div", { class: "actions" }, claim, approve), reason,
      h("div", { class: "actions" }, reject)),
    h("h2", {}, t("photos")), h("div", { class: "photos", id: "photos" }, await Promise.all(d.documents.map(photo))),
    h("h2", {}, t("history")), timeline(d),
    h("p", {}, h("a", { href: "#/reviews" }, t("back_desk"))));
}

// --- start ----------------------------------------------------------------------------------
document.documentElement.lang = LANG === "en" ? "en" : "zh-CN";
document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
document.title = t("brand");
document.getElementById("signout").addEventListener("click", () => { flash(""); signOut(); });
window.addEventListener("hashchange", () => { route(); });
route();
