// The console: a small page over the Ops API (no build step, no library).
// French by default, English one click away; what a role may not do is
// not shown, and the server refuses it anyway.
"use strict";

const TEXT = {
  fr: {
    switch_lang: "English", informs_since: "Informs depuis", logout: "Se déconnecter", login_title: "Connexion", username: "Utilisateur",
    password: "Mot de passe", login: "Se connecter", search_title: "Trouver un appareil",
    search_label: "MAC, numéro de série, série GPON, client, équipement ERPNext ou IP", search: "Chercher",
    reprovision: "Reprovisionner", connection_request: "Demande de connexion", reboot: "Redémarrer",
    topology: "Topologie", audit: "Journal d'audit", users: "Utilisateurs", no_result: "Aucun appareil trouvé.",
    online: "En ligne", offline: "Hors ligne", serial: "Numéro de série", model: "Modèle", firmware: "Micrologiciel",
    last_inform: "Dernier contact", state: "État", provisioning: "Provisionnement", reason: "Raison",
    erpnext: "ERPNext", customer: "Client", in_progress: "En cours…", done: "Terminé.", failed: "Échec : ",
    confirm_reboot: "Redémarrer cet appareil? Le service du client sera coupé quelques minutes.",
    cr_ok: "L'appareil a accepté la demande de connexion.", cr_failed: "L'appareil n'a pas répondu : ",
    reboot_queued: "Redémarrage demandé.", no_topology: "Topologie pas encore lue.", clients: "clients",
    not_allowed: "Votre rôle ne permet pas cette action.", session_over: "Votre session a pris fin : reconnectez-vous.",
    bad_login: "Utilisateur ou mot de passe incorrect.", network: "Le serveur ne répond pas : vérifiez la connexion.",
    role: "Rôle", no_audit: "Aucune action enregistrée.", fleet: "Flotte", alarms: "Alarmes",
    optical: "Puissance optique", rx_power: "Puissance reçue", tx_power: "Puissance émise",
    last_30_days: "30 derniers jours", no_alarm: "Aucune alarme.", devices: "Appareils",
    by_model: "Par modèle", by_firmware: "Par micrologiciel", by_provisioning: "Par provisionnement",
    alarm: { optical_rx_low: "Puissance optique reçue trop faible", optical_rx_high: "Puissance optique reçue trop forte",
      silent: "Ne contacte plus l'ACS", boot_loop: "Redémarre en boucle", provisioning_failed: "Provisionnement en échec répété" },
    wan: "Adresses WAN", wan_changes: "Changements d'adresse WAN", limits: "Seuils d'alarme", optical_class: "Classe optique",
    new_user: "Nouvel utilisateur", create: "Créer", disable: "Désactiver", disabled: "désactivé", user_created: "Utilisateur créé.",
    user_disabled: "Utilisateur désactivé.", password_rule: "12 caractères ou plus",
    recent_informs: "Derniers contacts", tasks: "Tâches", faults: "Erreurs", no_task: "Aucune tâche.",
    no_fault: "Aucune erreur.", retry: "Réessayer", retried: "Relancé.",
    task_status: { pending: "en attente", sent: "envoyée", awaiting_completion: "en cours", done: "terminée", failed: "échouée", cancelled: "annulée" },
    campaigns: "Campagnes", no_campaign: "Aucune campagne.", pause: "Suspendre", resume: "Reprendre", abort: "Annuler",
    confirm_abort: "Annuler cette campagne? Les téléchargements pas encore envoyés sont retirés.", wave: "Vague",
    campaign_state: { running: "en cours", paused: "suspendue", halted: "arrêtée", done: "terminée", aborted: "annulée" },
    rollout: { succeeded: "réussis", failed: "échoués", timed_out: "sans retour", wrong_version: "mauvaise version", pending: "en attente", sent: "envoyés", skipped: "déjà à jour" },
    tokens: "Jetons d'API (machines)", new_token: "Nouveau jeton", issue: "Émettre", revoke: "Révoquer",
    token_once: "Copiez ce jeton maintenant : il ne sera plus affiché.", token_revoked: "Jeton révoqué.", no_token: "Aucun jeton émis.",
    status: { pending: "En attente", provisioned: "Provisionné", no_config: "Aucune configuration dans ERPNext",
      unresolved: "Introuvable dans ERPNext", ambiguous: "Plusieurs équipements ERPNext correspondent",
      deferred: "Reporté : ERPNext indisponible", fault: "En erreur", no_profile: "Modèle non pris en charge" },
  },
  en: {
    switch_lang: "Français", informs_since: "Informs since", logout: "Log out", login_title: "Log in", username: "User name",
    password: "Password", login: "Log in", search_title: "Find a device",
    search_label: "MAC, serial number, GPON serial, customer, ERPNext equipment or IP", search: "Search",
    reprovision: "Reprovision", connection_request: "Connection request", reboot: "Reboot",
    topology: "Topology", audit: "Audit log", users: "Users", no_result: "No device found.",
    online: "Online", offline: "Offline", serial: "Serial number", model: "Model", firmware: "Firmware",
    last_inform: "Last contact", state: "State", provisioning: "Provisioning", reason: "Reason",
    erpnext: "ERPNext", customer: "Customer", in_progress: "In progress…", done: "Done.", failed: "Failed: ",
    confirm_reboot: "Reboot this device? The customer's service stops for a few minutes.",
    cr_ok: "The device accepted the connection request.", cr_failed: "The device did not answer: ",
    reboot_queued: "Reboot requested.", no_topology: "Topology not read yet.", clients: "clients",
    not_allowed: "Your role does not allow this.", session_over: "Your session ended: log in again.",
    bad_login: "Wrong user name or password.", network: "The server does not answer: check the connection.",
    role: "Role", no_audit: "No action recorded.", fleet: "Fleet", alarms: "Alarms",
    optical: "Optical power", rx_power: "Received power", tx_power: "Transmitted power",
    last_30_days: "Last 30 days", no_alarm: "No alarm.", devices: "Devices",
    by_model: "By model", by_firmware: "By firmware", by_provisioning: "By provisioning",
    alarm: { optical_rx_low: "Received optical power too low", optical_rx_high: "Received optical power too high",
      silent: "No longer contacts the ACS", boot_loop: "Reboots in a loop", provisioning_failed: "Provisioning keeps failing" },
    wan: "WAN addresses", wan_changes: "WAN address changes", limits: "Alarm limits", optical_class: "Optical class",
    new_user: "New user", create: "Create", disable: "Disable", disabled: "disabled", user_created: "User created.",
    user_disabled: "User disabled.", password_rule: "12 characters or more",
    recent_informs: "Recent contacts", tasks: "Tasks", faults: "Faults", no_task: "No task.",
    no_fault: "No fault.", retry: "Retry", retried: "Retried.",
    task_status: { pending: "pending", sent: "sent", awaiting_completion: "in progress", done: "done", failed: "failed", cancelled: "cancelled" },
    campaigns: "Campaigns", no_campaign: "No campaign.", pause: "Pause", resume: "Resume", abort: "Abort",
    confirm_abort: "Abort this campaign? Downloads not yet sent are withdrawn.", wave: "Wave",
    campaign_state: { running: "running", paused: "paused", halted: "halted", done: "done", aborted: "aborted" },
    rollout: { succeeded: "succeeded", failed: "failed", timed_out: "timed out", wrong_version: "wrong version", pending: "pending", sent: "sent", skipped: "already up to date" },
    tokens: "API tokens (machines)", new_token: "New token", issue: "Issue", revoke: "Revoke",
    token_once: "Copy this token now: it will not be shown again.", token_revoked: "Token revoked.", no_token: "No token issued.",
    status: { pending: "Pending", provisioned: "Provisioned", no_config: "No configuration in ERPNext",
      unresolved: "Not found in ERPNext", ambiguous: "Several ERPNext equipment records match",
      deferred: "Deferred: ERPNext unavailable", fault: "Failed", no_profile: "Model not supported" },
  },
};

let lang = localStorage.getItem("lang") === "en" ? "en" : "fr";
let me = null;
const $ = (id) => document.getElementById(id);
const t = (key) => TEXT[lang][key] || key;
// A provisioning status in words.
const statusText = (s) => TEXT[lang].status[s] || s;

function applyLanguage() {
  document.documentElement.lang = lang;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  $("q").setAttribute("aria-label", t("search_label"));
}

const ROLES = ["technician", "ops", "admin"];
const atLeast = (role) => me && ROLES.indexOf(me.role) >= ROLES.indexOf(role);

function show(section) {
  for (const id of ["login", "search", "device", "fleet", "campaigns", "users"]) $(id).hidden = id !== section;
  $("logout").hidden = !me;
  $("nav-search").hidden = !me;
  // What a role may not use is not shown (the server refuses it anyway).
  $("nav-fleet").hidden = !atLeast("ops");
  $("nav-campaigns").hidden = !atLeast("ops");
  $("nav-users").hidden = !atLeast("admin");
  $("who").textContent = me ? `${me.user} (${me.role})` : "";
}

function setError(text) {
  $("error").textContent = text || "";
  $("error").hidden = !text;
}

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

// One API call; writes carry the session's CSRF token.
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (me && me.csrf_token) headers["X-CSRF-Token"] = me.csrf_token;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, credentials: "same-origin", body: body ? JSON.stringify(body) : undefined });
  } catch (e) {
    throw new ApiError(0, "network", t("network"));
  }
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) {
    const err = (json && json.error) || {};
    throw new ApiError(response.status, err.code || "", err.message || response.statusText);
  }
  return json;
}

// What an error means for the person in front of the page.
function explain(e) {
  if (e.status === 401) { me = null; show("login"); return t("session_over"); }
  if (e.status === 403 && e.code === "forbidden") return t("not_allowed") + " (" + e.message + ")";
  return e.message;
}

async function guard(work) {
  setError("");
  try { await work(); } catch (e) { setError(explain(e)); }
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}

async function route() {
  if (!me) { show("login"); $("username").focus(); return; }
  const hash = location.hash || "#/";
  if (hash.startsWith("#/device/")) return openDevice(decodeURIComponent(hash.slice(9)));
  if (hash === "#/users") return openUsers();
  if (hash === "#/fleet") return openFleet();
  if (hash === "#/campaigns") return openCampaigns();
  show("search");
}

async function login(event) {
  event.preventDefault();
  setError("");
  try {
    me = await api("POST", "/api/v1/login", { username: $("username").value, password: $("password").value });
    $("password").value = "";
    await route();
  } catch (e) {
    setError(e.status === 401 ? t("bad_login") : explain(e));
  }
}

async function logout() {
  await guard(async () => { await api("POST", "/api/v1/logout"); });
  me = null;
  location.hash = "#/";
  show("login");
}

async function search(event) {
  event.preventDefault();
  await guard(async () => {
    const q = $("q").value.trim();
    const list = await api("GET", "/api/v1/devices?limit=50&q=" + encodeURIComponent(q));
    const results = $("results");
    results.replaceChildren();
    if (!list.devices.length) results.append(el("li", {}, t("no_result")));
    for (const d of list.devices) {
      const link = el("a", { href: "#/device/" + encodeURIComponent(d.id) }, d.serial_number);
      results.append(el("li", { "data-device": d.id }, link, " — ", d.product_class, " — ",
        d.online ? t("online") : t("offline"), " — ", statusText(d.provisioning.status)));
    }
  });
}

function signalClass(q) {
  if (q == null) return "s-none";
  return q >= 60 ? "s-good" : q >= 30 ? "s-fair" : "s-poor";
}

async function openDevice(id) {
  show("device");
  await guard(async () => {
    const d = await api("GET", "/api/v1/devices/" + encodeURIComponent(id));
    $("device-title").textContent = d.serial_number + " — " + d.product_class;
    const facts = $("identity");
    facts.replaceChildren();
    const fact = (k, v) => facts.append(el("dt", {}, t(k)), el("dd", {}, v == null ? "—" : v));
    fact("serial", d.serial_number);
    fact("model", d.model_name || d.product_class);
    fact("firmware", d.software_version);
    fact("state", d.online ? t("online") : t("offline"));
    fact("last_inform", d.last_inform);
    fact("provisioning", statusText(d.provisioning.status));
    fact("reason", d.provisioning.reason);
    if (d.erpnext) {
      const link = d.erpnext.url ? el("a", { href: d.erpnext.url, rel: "noopener" }, d.erpnext.equipment) : d.erpnext.equipment;
      facts.append(el("dt", {}, t("erpnext")), el("dd", {}, link, d.erpnext.status ? " — " + d.erpnext.status : ""));
      fact("customer", d.erpnext.customer);
    }
    const diag = d.diagnostics || { wan_ipv4: [], wan_ipv6: [] };
    const wan = diag.wan_ipv4.concat(diag.wan_ipv6).map((w) => w.address);
    fact("wan", wan.length ? wan.join(", ") : null);
    $("device").dataset.id = id;
    $("action-status").textContent = "";
    showOptical(id, diag.optical, d.optical_class);
    const informs = $("recent-informs");
    informs.replaceChildren();
    for (const e of (d.recent_events || []).slice().reverse().slice(0, 10)) informs.append(el("li", {}, e.at + " — " + e.code + (e.count > 1 ? " ×" + e.count + " (" + t("informs_since") + " " + e.first_at + ")" : "")));
    await Promise.all([loadTopology(id), loadAudit(id), loadAlarms(id), loadWanChanges(id), loadTasks(id), loadFaults(id)]);
  });
}

async function loadTopology(id) {
  const box = $("topology");
  box.replaceChildren();
  let hosts;
  try { hosts = await api("GET", "/api/v1/devices/" + encodeURIComponent(id) + "/hosts"); } catch (e) {
    box.append(el("p", {}, e.status === 409 ? t("no_topology") : explain(e)));
    return;
  }
  if (!hosts.nodes.length) box.append(el("p", {}, t("no_topology")));
  for (const n of hosts.nodes) {
    const list = el("ul", {});
    for (const c of n.clients) {
      const q = c.signal_quality;
      list.append(el("li", {}, (c.hostname || c.mac) + " — " + c.connection + " ",
        el("span", { class: "signal " + signalClass(q), title: c.signal_dbm == null ? "" : c.signal_dbm + " dBm" }, q == null ? "—" : q + " %")));
    }
    box.append(el("div", { class: "node", "data-node": n.mac },
      el("h3", {}, (n.hostname || n.model || n.mac) + " (" + n.role + ") — " + n.clients.length + " " + t("clients")), list));
  }
}

const alarmText = (a) => (TEXT[lang].alarm[a.kind] || a.kind) + (a.value == null ? "" : " (" + a.value + " dBm, " + a.threshold + ")");

async function loadAlarms(id) {
  const list = $("device-alarms");
  list.replaceChildren();
  const r = await api("GET", "/api/v1/alarms?device=" + encodeURIComponent(id));
  if (!r.alarms.length) list.append(el("li", {}, t("no_alarm")));
  for (const a of r.alarms) list.append(el("li", { class: "error", "data-alarm": a.kind }, alarmText(a) + " — " + a.raised_at));
}

// The device's recent tasks, newest first, with how each ended.
async function loadTasks(id) {
  const list = $("device-tasks");
  list.replaceChildren();
  const r = await api("GET", "/api/v1/devices/" + encodeURIComponent(id) + "/tasks");
  if (!r.tasks.length) list.append(el("li", {}, t("no_task")));
  for (const k of r.tasks.slice().reverse().slice(0, 10)) {
    const how = (TEXT[lang].task_status[k.status] || k.status) + (k.fault ? " — " + k.fault.code + " " + k.fault.message : "");
    list.append(el("li", { "data-task": k.id }, k.updated + " — " + k.name + " — " + how));
  }
}

// Its faults; Ops may retry one (the server refuses anyone else).
async function loadFaults(id) {
  const list = $("device-faults");
  list.replaceChildren();
  const r = await api("GET", "/api/v1/faults?device=" + encodeURIComponent(id) + "&limit=20");
  if (!r.faults.length) list.append(el("li", {}, t("no_fault")));
  for (const f of r.faults) {
    const item = el("li", { class: "error", "data-fault": f.id }, f.at + " — " + f.source + " " + f.code + " — " + f.message + " ");
    if (atLeast("ops")) {
      const b = el("button", { type: "button", "aria-label": t("retry") + " " + f.code }, t("retry"));
      b.addEventListener("click", () => guard(async () => {
        await api("DELETE", "/api/v1/faults/" + f.id);
        status(t("retried"), true);
        await Promise.all([loadFaults(id), loadTasks(id)]);
      }));
      item.append(b);
    }
    list.append(item);
  }
}

// The WAN addresses the device had over the last 30 days.
async function loadWanChanges(id) {
  const list = $("wan-changes");
  list.replaceChildren();
  const h = await api("GET", "/api/v1/devices/" + encodeURIComponent(id) + "/history?metric=wan_ip");
  $("wan-history").hidden = !h.points.length;
  for (const p of h.points.slice().reverse()) list.append(el("li", {}, p.at + " — " + p.value));
}

// Received power as a gauge against the limits of the ONT's optical
// class, and its 30 days.
async function showOptical(id, optical, cls) {
  $("optical").hidden = !optical || optical.rx_dbm == null;
  if ($("optical").hidden) return;
  const limits = cls ? [cls.rx_min_dbm, cls.rx_max_dbm] : [-27, -8];
  const meter = $("rx-meter");
  meter.min = Math.min(-35, limits[0] - 5);
  meter.max = Math.max(0, limits[1] + 3);
  meter.low = limits[0];
  meter.high = limits[1];
  meter.optimum = (limits[0] + limits[1]) / 2;
  meter.value = optical.rx_dbm;
  $("rx-limits").textContent = t("limits") + " : " + limits[0] + " / " + limits[1] + " dBm" + (cls ? " — " + t("optical_class") + " " + cls.name : "");
  $("rx-value").textContent = optical.rx_dbm + " dBm";
  $("tx-value").textContent = t("tx_power") + " : " + (optical.tx_dbm == null ? "—" : optical.tx_dbm + " dBm");
  const h = await api("GET", "/api/v1/devices/" + encodeURIComponent(id) + "/history?metric=optical_rx_dbm");
  const svg = $("rx-chart");
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const y = (v) => Math.max(0, Math.min(100, (-v) * 100 / 35));
  for (const limit of limits) {
    const line = document.createElementNS(ns, "line");
    for (const [k, v] of Object.entries({ x1: 0, x2: 300, y1: y(limit), y2: y(limit), stroke: "#a4161a", "stroke-dasharray": "4 3" })) line.setAttribute(k, v);
    svg.append(line);
  }
  if (h.points.length) {
    const t0 = Date.parse(h.points[0].at), t1 = Math.max(t0 + 1, Date.parse(h.points[h.points.length - 1].at));
    const pts = h.points.map((p) => ((Date.parse(p.at) - t0) * 300 / (t1 - t0)).toFixed(1) + "," + y(p.value).toFixed(1));
    const line = document.createElementNS(ns, "polyline");
    for (const [k, v] of Object.entries({ points: pts.join(" "), fill: "none", stroke: "#0b5cad", "stroke-width": 2 })) line.setAttribute(k, v);
    svg.append(line);
  }
  svg.setAttribute("aria-label", t("rx_power") + ": " + h.points.map((p) => p.value + " dBm").join(", "));
}

async function openFleet() {
  show("fleet");
  await guard(async () => {
    const f = await api("GET", "/api/v1/fleet");
    const facts = $("fleet-counts");
    facts.replaceChildren();
    const add = (k, v) => facts.append(el("dt", {}, k), el("dd", {}, v));
    add(t("devices"), f.devices + " (" + t("online") + " : " + f.online + ")");
    const join = (m) => Object.entries(m).map(([k, v]) => k + " : " + v).join(", ") || "—";
    add(t("by_model"), join(f.by_model));
    add(t("by_firmware"), join(f.by_firmware));
    add(t("by_provisioning"), Object.entries(f.by_provisioning).map(([k, v]) => statusText(k) + " : " + v).join(", ") || "—");
    add(t("alarms"), Object.entries(f.alarms).map(([k, v]) => (TEXT[lang].alarm[k] || k) + " : " + v).join(", ") || "—");
    const list = $("fleet-alarms");
    list.replaceChildren();
    if (!f.open_alarms.length) list.append(el("li", {}, t("no_alarm")));
    for (const a of f.open_alarms) {
      list.append(el("li", {}, el("a", { href: "#/device/" + encodeURIComponent(a.device_id) }, a.device_id), " — " + alarmText(a)));
    }
  });
}

// Firmware campaigns for Ops: where each stands, wave by wave; pause,
// resume, abort.
async function openCampaigns() {
  show("campaigns");
  await guard(async () => {
    const r = await api("GET", "/api/v1/campaigns");
    const list = $("campaign-list");
    list.replaceChildren();
    if (!r.campaigns.length) list.append(el("li", {}, t("no_campaign")));
    for (const c of r.campaigns) {
      const state = TEXT[lang].campaign_state[c.state] || c.state;
      const item = el("li", { "data-campaign": c.id },
        el("h2", {}, c.name + " — " + c.version),
        el("p", { class: "campaign-state" }, state + (c.state === "done" || c.state === "aborted" ? "" : " — " + t("wave") + " " + c.wave + "/" + c.waves.length)));
      if (c.halt_reason) item.append(el("p", { class: "error" }, c.halt_reason));
      const waves = el("ul", {});
      for (const w of c.waves) {
        const parts = Object.entries(w.counts).filter(([k, v]) => k !== "devices" && v > 0)
          .map(([k, v]) => v + " " + (TEXT[lang].rollout[k] || k));
        waves.append(el("li", {}, t("wave") + " " + w.wave + " (" + w.counts.devices + ") : " + (parts.join(", ") || "—")));
      }
      item.append(waves);
      const button = (label, action, confirmText) => {
        const b = el("button", { type: "button", "aria-label": t(label) + " " + c.name }, t(label));
        b.addEventListener("click", () => {
          if (confirmText && !window.confirm(confirmText)) return;
          guard(async () => { await api("POST", "/api/v1/campaigns/" + encodeURIComponent(c.id) + "/" + action); await openCampaigns(); });
        });
        item.append(b);
      };
      if (c.state === "running") button("pause", "pause");
      if (c.state === "paused" || c.state === "halted") button("resume", "resume");
      if (["running", "paused", "halted"].includes(c.state)) button("abort", "abort", t("confirm_abort"));
      list.append(item);
    }
  });
}

async function loadAudit(id) {
  const list = $("device-audit");
  list.replaceChildren();
  const log = await api("GET", "/api/v1/audit?limit=20&device=" + encodeURIComponent(id));
  if (!log.entries.length) list.append(el("li", {}, t("no_audit")));
  for (const e of log.entries) list.append(el("li", {}, e.at + " — " + e.user + " — " + e.action + " — " + e.status));
}

// Follows a task until it finishes; says how it ended.
async function follow(taskId) {
  for (let i = 0; i < 180; i++) {
    const task = await api("GET", "/api/v1/tasks/" + taskId);
    if (["done", "failed", "cancelled"].includes(task.status)) return task;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return null;
}

function status(text, ok) {
  const s = $("action-status");
  s.textContent = text;
  s.className = ok === false ? "error" : ok ? "ok" : "";
}

// Follows a task live over the event stream (SSE): each event of the
// device is shown as it comes, until the task's `task.done`; falls back to
// asking for the task when the stream is not available.
function followLive(id, taskId) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (task) => { if (!done) { done = true; stream.close(); resolve(task); } };
    const stream = new EventSource("/api/v1/events?device=" + encodeURIComponent(id));
    for (const kind of ["device.online", "device.provisioned", "device.fault"]) {
      stream.addEventListener(kind, () => status(t("in_progress") + " (" + kind + ")"));
    }
    stream.addEventListener("task.done", (e) => {
      const data = JSON.parse(e.data).data || {};
      if (data.task_id === taskId) finish({ status: data.status, fault: data.fault });
    });
    stream.onerror = () => { if (!done) { done = true; stream.close(); follow(taskId).then(resolve); } };
    // The task may have finished before the stream opened.
    api("GET", "/api/v1/tasks/" + taskId).then((task) => {
      if (["done", "failed", "cancelled"].includes(task.status)) finish(task);
    }).catch(() => {});
    setTimeout(() => { if (!done) { done = true; stream.close(); follow(taskId).then(resolve); } }, 120000);
  });
}

async function reprovision() {
  const id = $("device").dataset.id;
  await guard(async () => {
    status(t("in_progress"));
    const r = await api("POST", "/api/v1/devices/" + encodeURIComponent(id) + "/reprovision");
    const task = await followLive(id, r.task.id);
    const ok = task && task.status === "done";
    const text = ok ? t("done") : t("failed") + (task && task.fault ? task.fault.message : task ? task.status : "timeout");
    await openDevice(id);
    status(text, ok);
  });
}

async function connectionRequest() {
  const id = $("device").dataset.id;
  await guard(async () => {
    status(t("in_progress"));
    const r = await api("POST", "/api/v1/devices/" + encodeURIComponent(id) + "/connection-request");
    if (r.ok) status(t("cr_ok"), true); else status(t("cr_failed") + r.detail, false);
  });
}

async function reboot() {
  const id = $("device").dataset.id;
  if (!window.confirm(t("confirm_reboot"))) return;
  await guard(async () => {
    await api("POST", "/api/v1/devices/" + encodeURIComponent(id) + "/tasks?connection_request=true", { name: "reboot" });
    status(t("reboot_queued"), true);
  });
}

async function openUsers() {
  show("users");
  await guard(async () => {
    const list = await api("GET", "/api/v1/users");
    const ul = $("user-list");
    ul.replaceChildren();
    for (const u of list.users) {
      const item = el("li", { "data-user": u.name }, u.name + " — " + u.role + (u.disabled ? " — " + t("disabled") : "") + " ");
      if (!u.disabled && u.name !== me.user) {
        const b = el("button", { type: "button", "aria-label": t("disable") + " " + u.name }, t("disable"));
        b.addEventListener("click", () => disableUser(u.name));
        item.append(b);
      }
      ul.append(item);
    }
  });
}

async function loadTokens() {
  const list = await api("GET", "/api/v1/tokens");
  const ul = $("token-list");
  ul.replaceChildren();
  if (!list.tokens.length) ul.append(el("li", {}, t("no_token")));
  for (const k of list.tokens) {
    const item = el("li", { "data-token": k.name }, k.name + " — " + k.role + " — " + k.created + " — " + k.created_by + " ");
    const b = el("button", { type: "button", "aria-label": t("revoke") + " " + k.name }, t("revoke"));
    b.addEventListener("click", () => revokeToken(k.name));
    item.append(b);
    ul.append(item);
  }
}

async function issueToken(event) {
  event.preventDefault();
  await guard(async () => {
    const r = await api("POST", "/api/v1/tokens", { name: $("token-name").value.trim(), role: $("token-role").value });
    $("token-secret").hidden = false;
    $("token-value").textContent = r.token;
    await loadTokens();
  });
}

async function revokeToken(name) {
  await guard(async () => {
    await api("DELETE", "/api/v1/tokens/" + encodeURIComponent(name));
    $("token-secret").hidden = true;
    $("token-value").textContent = "";
    $("user-status").textContent = t("token_revoked");
    await loadTokens();
  });
}

async function createUser(event) {
  event.preventDefault();
  await guard(async () => {
    await api("POST", "/api/v1/users", { name: $("new-name").value.trim(), role: $("new-role").value, password: $("new-password").value });
    $("new-password").value = "";
    $("user-status").textContent = t("user_created");
    await openUsers();
  });
}

async function disableUser(name) {
  await guard(async () => {
    await api("DELETE", "/api/v1/users/" + encodeURIComponent(name));
    $("user-status").textContent = t("user_disabled");
    await openUsers();
  });
}

async function start() {
  applyLanguage();
  $("lang").addEventListener("click", () => {
    lang = lang === "fr" ? "en" : "fr";
    localStorage.setItem("lang", lang);
    applyLanguage();
    route();
  });
  $("login-form").addEventListener("submit", login);
  $("search-form").addEventListener("submit", search);
  $("logout").addEventListener("click", logout);
  $("reprovision").addEventListener("click", reprovision);
  $("cr").addEventListener("click", connectionRequest);
  $("reboot").addEventListener("click", reboot);
  $("user-form").addEventListener("submit", createUser);
  $("token-form").addEventListener("submit", issueToken);
  window.addEventListener("hashchange", route);
  try { me = await api("GET", "/api/v1/me"); } catch (e) { me = null; }
  await route();
}

document.addEventListener("DOMContentLoaded", start);
