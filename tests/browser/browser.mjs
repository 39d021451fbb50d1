// The web UI in a real browser: Debian's Chromium driven by playwright-core (pinned in
// package.json), against a `picket run` that tests/e2e/browser.rs started. Every page, in its
// empty and populated states, is checked for console errors, page errors, failed requests,
// responses >= 400, axe-core's WCAG 2.2 AA rules (no serious or critical violation), an
// accessible name on every control, and no page-level horizontal scrolling at 1280 and 390 px;
// each is screenshotted at both widths into ARTIFACTS. Then the user journeys of the web UI
// issue run through the UI. Exits 0 when everything held, else 1 with the failures on stderr.
//
// Environment: PICKET_URL, SIGN_IN_LINK, ADMIN_TOKEN, REPOS (JSON [{name, url}]), ARTIFACTS, CHROMIUM.

import { chromium } from "playwright-core";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const base = process.env.PICKET_URL;
const artifacts = process.env.ARTIFACTS;
const repos = JSON.parse(process.env.REPOS);
fs.mkdirSync(artifacts, { recursive: true });

const failures = [];
const checked = [];
function fail(msg) {
  failures.push(msg);
  console.error("FAIL", msg);
}
function expect(cond, msg) {
  if (!cond) fail(msg);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});

// A context whose every page reports console errors, page errors, failed requests and
// responses >= 400 as failures.
async function watchedContext(label) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
  ctx.on("page", (page) => watch(page, label));
  return ctx;
}
function watch(page, label) {
  page.on("console", (m) => { if (m.type() === "error") fail(`${label}: console error on ${page.url()}: ${m.text()}`); });
  page.on("pageerror", (e) => fail(`${label}: page error on ${page.url()}: ${e.message}`));
  page.on("requestfailed", (r) => {
    const why = r.failure()?.errorText || "";
    // An event stream or a navigation cut short by the next navigation is not a failure.
    if (why.includes("ERR_ABORTED")) return;
    fail(`${label}: request failed: ${r.method()} ${r.url()} ${why}`);
  });
  page.on("response", (r) => { if (r.status() >= 400) fail(`${label}: ${r.status()} for ${r.request().method()} ${r.url()}`); });
}

// The checks every page state gets, at both widths, with a screenshot of each.
async function checkPage(page, name) {
  checked.push(name);
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 1280 ? 900 : 844 });
    await page.waitForTimeout(50);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow <= 0, `${name} @${width}px scrolls horizontally by ${overflow}px`);
    await page.screenshot({ path: path.join(artifacts, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () =>
    await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }));
  for (const v of result.violations) {
    if (v.impact === "serious" || v.impact === "critical") {
      fail(`${name}: axe ${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")})`);
    }
  }
  const unnamed = await page.evaluate(() => {
    const controls = document.querySelectorAll("a[href], button, input:not([type=hidden]), select, textarea, summary");
    const out = [];
    for (const el of controls) {
      const labelled = (el.labels && [...el.labels].some((l) => l.textContent.trim())) ||
        (el.getAttribute("aria-label") || "").trim() ||
        (el.getAttribute("aria-labelledby") && document.getElementById(el.getAttribute("aria-labelledby"))?.textContent.trim()) ||
        (el.tagName !== "INPUT" && el.tagName !== "SELECT" && el.textContent.trim()) ||
        (el.querySelector("img[alt]:not([alt=''])")) ||
        (el.getAttribute("title") || "").trim();
      if (!labelled) out.push(el.outerHTML.slice(0, 120));
    }
    return out;
  });
  for (const u of unnamed) fail(`${name}: a control without an accessible name: ${u}`);
}

async function step(name, fn) {
  try {
    await fn();
    console.log("ok  ", name);
  } catch (e) {
    fail(`${name}: ${e.message.split("\n")[0]}`);
  }
}

const ctx = await watchedContext("admin");
const page = await ctx.newPage();

await step("sign in with the one-time link", async () => {
  await page.goto(`${base}/sign-in`);
  await checkPage(page, "sign-in");
  await page.goto(process.env.SIGN_IN_LINK);
  await checkPage(page, "sign-in-link");
  await page.getByRole("button", { name: "Continue" }).click();
  await page.waitForURL(/\/projects$/);
  await page.getByText("demo/sample-app").waitFor();
  await checkPage(page, "projects");
});

await step("empty states say what to do next", async () => {
  await page.goto(`${base}/projects?tab=not_scanning`);
  await page.getByText("Every project is being scanned.").waitFor();
  await checkPage(page, "projects-not-scanning-empty");
  await page.goto(`${base}/projects?q=no-such-project`);
  await page.getByText("No project matches these filters.").waitFor();
  await checkPage(page, "projects-no-match");
  await page.goto(`${base}/findings?rule=no.such.rule`);
  await page.getByText("No findings match these filters.").waitFor();
  await checkPage(page, "findings-empty");
});

await step("add three local projects", async () => {
  for (const repo of repos) {
    await page.goto(`${base}/projects`);
    await page.getByLabel("Name", { exact: true }).fill(repo.name);
    await page.getByLabel("Clone URL").fill(repo.url);
    await page.getByRole("button", { name: "Add", exact: true }).click();
    await page.getByText("Project added").waitFor();
  }
  for (const repo of repos) await page.getByRole("link", { name: repo.name }).waitFor();
  // Their initial scans run; wait until all are done before the bulk scan.
  await page.waitForFunction((names) => names.every((n) => {
    const row = [...document.querySelectorAll("tbody tr")].find((r) => r.textContent.includes(n));
    return row && row.querySelector("td:nth-child(5) .state")?.textContent === "done";
  }), repos.map((r) => r.name), { timeout: 120000 });
});

await step("select two, click Scan, watch both finish without a reload", async () => {
  await page.goto(`${base}/projects`);
  await page.getByLabel(`Select ${repos[0].name}`).check();
  await page.getByLabel(`Select ${repos[1].name}`).check();
  await page.getByRole("button", { name: "Scan", exact: true }).click();
  await page.getByText("Queued 2 full scans.").waitFor();
  await page.evaluate(() => { window.__noReload = true; });
  const states = async () => page.evaluate((names) => names.map((n) => {
    const row = [...document.querySelectorAll("tbody tr")].find((r) => r.textContent.includes(n));
    return row?.querySelector("td:nth-child(5) .state")?.textContent;
  }), [repos[0].name, repos[1].name]);
  const before = await states();
  expect(before.every((s) => s !== "done" || false), `rows showed ${before} right after Scan`);
  await page.waitForFunction((names) => window.__noReload && names.every((n) => {
    const row = [...document.querySelectorAll("tbody tr")].find((r) => r.textContent.includes(n));
    return row?.querySelector("td:nth-child(5) .state")?.textContent === "done";
  }), [repos[0].name, repos[1].name], { timeout: 120000 });
  await checkPage(page, "projects-after-scan");
});

await step("open a scan and see its steps and timeline", async () => {
  const row = page.locator("tbody tr", { hasText: repos[0].name });
  await row.locator("td:nth-child(5) a").click();
  await page.waitForURL(/\/scans\//);
  await page.getByRole("heading", { name: "Steps" }).waitFor();
  await page.getByRole("cell", { name: "clone", exact: true }).waitFor();
  await page.getByRole("cell", { name: "engine", exact: true }).waitFor();
  await page.getByRole("heading", { name: "Timeline" }).waitFor();
  await checkPage(page, "scan");
  await page.getByRole("link", { name: "Logs" }).click();
  await page.waitForURL(/\/scans\/[0-9a-f-]+\/logs$/);
  await page.getByText(/clone: done in \d+ ms/).waitFor();
  await page.getByText(/engine: done in \d+ ms; .*findings: \d+/).waitFor();
  await checkPage(page, "scan-logs");
  await page.goBack();
  await page.getByRole("link", { name: repos[0].name }).click();
  await page.waitForURL(/\/projects\/[0-9a-f-]+$/);
  await checkPage(page, "project");
  await page.getByLabel("Kind").selectOption("full");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/kind=full/);
  await page.getByRole("link", { name: "Remove this project…" }).click();
  await page.getByRole("alertdialog").waitFor();
  await checkPage(page, "project-remove-asking");
  await page.getByRole("link", { name: "Keep it" }).click();
  await page.waitForURL(/\/projects\/[0-9a-f-]+$/);
});

let demoRule = "picket.python.sql-injection";
await step("change a rule to Block", async () => {
  await page.goto(`${base}/policies?q=${demoRule}`);
  await checkPage(page, "policies");
  await page.getByLabel(`Select ${demoRule}`).check();
  await page.getByLabel("New mode").selectOption("block");
  await page.getByRole("button", { name: "Change mode" }).click();
  await page.getByText("Mode changed for 1 rule.").waitFor();
  const mode = await page.locator(`tr[id='rule-${demoRule}'] [data-mode]`).textContent();
  expect(mode === "block", `the rule shows mode ${mode}`);
  await page.goto(`${base}/policies?mode=block`);
  await page.getByText(demoRule).waitFor();
  await page.goto(`${base}/policies/packs`);
  await checkPage(page, "rule-packs-empty");
});

await step("triage a finding with a reason; it stays ignored after a new full scan", async () => {
  await page.goto(`${base}/findings?rule=${demoRule}`);
  await checkPage(page, "findings");
  await page.locator("tbody tr").first().getByRole("link", { name: demoRule }).click();
  await page.waitForURL(/\/findings\/[0-9a-f-]+$/);
  const findingUrl = page.url();
  // The matched lines the worker sent, numbered from the finding's first line.
  const where = await page.locator("dl.facts dd", { hasText: /lines? \d+/ }).first().textContent();
  const first = where.match(/lines? (\d+)/)[1];
  const code = page.getByLabel(/^Matched lines of /);
  await code.waitFor();
  expect((await code.locator(".ln").first().textContent()) === first, `matched lines start at line ${first}`);
  expect((await code.textContent()).trim().length > first.length, "matched lines hold code");
  await page.getByLabel("Reason (to ignore)").selectOption("used_in_tests");
  await page.getByLabel("Comment (optional)").fill("fixture of the test suite");
  await page.getByRole("button", { name: "Save triage" }).click();
  await page.getByText("ignored: used in tests").waitFor();
  await page.getByRole("cell", { name: "open → ignored" }).waitFor();
  await checkPage(page, "finding");
  // A new full scan of the project, through the Projects page.
  await page.goto(`${base}/projects?q=demo`);
  await page.getByLabel("Select demo/sample-app").check();
  await page.getByRole("button", { name: "Scan", exact: true }).click();
  await page.getByText("Queued 1 full scan.").waitFor();
  await page.waitForFunction(() => {
    const row = [...document.querySelectorAll("tbody tr")].find((r) => r.textContent.includes("demo/sample-app"));
    return row?.querySelector("td:nth-child(5) .state")?.textContent === "done";
  }, null, { timeout: 120000 });
  await page.goto(findingUrl);
  await page.getByText("ignored: used in tests").waitFor();
});

await step("bulk-ignore by filter, and the filter survives", async () => {
  const rule = "picket.secrets.github-token";
  await page.goto(`${base}/findings?status=open&rule=${rule}`);
  const total = await page.locator("tbody tr").count();
  expect(total >= 1, `no open ${rule} finding to ignore`);
  await page.getByRole("checkbox", { name: /All \d+ matching/ }).check();
  await page.getByLabel("Reason (to ignore)").selectOption("false_positive");
  await page.getByRole("button", { name: "Apply to selected" }).click();
  await page.getByText(/Triaged: \d+ findings? changed\./).waitFor();
  expect(page.url().includes(`rule=${encodeURIComponent(rule).replace(/%2E/g, ".")}`) || page.url().includes(`rule=${rule}`), `the filter was lost: ${page.url()}`);
  await page.getByText("No findings match these filters.").waitFor();
  await page.goto(`${base}/findings?status=ignored&reason=false_positive`);
  await page.getByRole("link", { name: rule }).first().waitFor();
});

await step("export the filtered findings as CSV", async () => {
  await page.goto(`${base}/findings?status=any`);
  const shown = Number((await page.getByText(/findings? match(es)?\./).textContent()).match(/\d+/)[0]);
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Export CSV" }).click(),
  ]);
  const file = path.join(artifacts, "findings.csv");
  await download.saveAs(file);
  const lines = fs.readFileSync(file, "utf8").trim().split("\n");
  expect(lines[0].startsWith("id,project,ref,"), `the CSV header is ${lines[0]}`);
  // Messages may hold newlines inside quotes: count records by their leading uuid.
  const records = lines.filter((l) => /^[0-9a-f]{8}-[0-9a-f]{4}-/.test(l)).length;
  expect(records === shown, `the CSV holds ${records} findings, the page said ${shown}`);
  await page.goto(`${base}/findings?status=any&group=rule`);
  await checkPage(page, "findings-by-rule");
});

await step("connections", async () => {
  await page.goto(`${base}/connections`);
  await page.getByRole("link", { name: "demo" }).waitFor();
  await checkPage(page, "connections");
  await page.getByRole("link", { name: "demo" }).click();
  await page.waitForURL(/\/connections\/[0-9a-f-]+$/);
  await checkPage(page, "connection");
});

await step("revoke a token and see its session refused", async () => {
  await page.goto(`${base}/settings`);
  await checkPage(page, "settings");
  await page.getByLabel("Name", { exact: true }).fill("browser member");
  await page.getByLabel("Role").selectOption("member");
  await page.getByRole("button", { name: "Create token" }).click();
  const token = await page.getByLabel("New token").inputValue();
  expect(/^pkt_[A-Za-z0-9]{43}$/.test(token), "a new token is shown once");
  await checkPage(page, "settings-token-created");
  const other = await watchedContext("member");
  const mpage = await other.newPage();
  await mpage.goto(`${base}/sign-in`);
  await mpage.getByLabel("API token").fill(token);
  await mpage.getByRole("button", { name: "Sign in" }).click();
  await mpage.waitForURL(/\/projects/);
  await mpage.getByText("browser member").waitFor();
  await page.goto(`${base}/settings`);
  await page.getByRole("button", { name: "Revoke browser member" }).click();
  await page.getByText("Token revoked").waitFor();
  await mpage.goto(`${base}/projects`);
  await mpage.waitForURL(/\/sign-in\?/);
  await mpage.getByText("Your session has ended").waitFor();
  await other.close();
});

await step("bulk scan with the keyboard only", async () => {
  await page.goto(`${base}/projects`);
  const target = `Select ${repos[2].name}`;
  const focusOn = async (pred, what) => {
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press("Tab");
      if (await page.evaluate(pred, target)) return;
    }
    throw new Error(`Tab never reached ${what}`);
  };
  await focusOn((t) => document.activeElement?.getAttribute("aria-label") === t, target);
  await page.keyboard.press("Space");
  expect(await page.getByLabel(target).isChecked(), "Space checked the row");
  // Back up to the Scan button (it comes before the table).
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Shift+Tab");
    if (await page.evaluate(() => document.activeElement?.id === "scan-button")) break;
  }
  expect(await page.evaluate(() => document.activeElement?.id === "scan-button"), "Shift+Tab reached Scan");
  await page.keyboard.press("Enter");
  await page.getByText("Queued 1 full scan.").waitFor();
});

await step("sign out", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/sign-in$/);
  await page.goto(`${base}/projects`);
  await page.waitForURL(/\/sign-in\?/);
});

await step("CSRF: a request without the session's token or from another origin is refused", async () => {
  const c = await browser.newContext();
  const p = await c.newPage();
  await p.goto(`${base}/sign-in`);
  await p.getByLabel("API token").fill(process.env.ADMIN_TOKEN);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.waitForURL(/\/projects/);
  const csrf = await p.locator("input[name=_csrf]").first().inputValue();
  const id = await p.locator("input[name=project]").first().inputValue();
  const noToken = await c.request.post(`${base}/projects/scan`, { form: { project: id }, maxRedirects: 0 });
  expect(noToken.status() === 403, `without the token: ${noToken.status()}`);
  const foreign = await c.request.post(`${base}/projects/scan`, {
    form: { project: id, _csrf: csrf }, headers: { Origin: "http://evil.example" }, maxRedirects: 0,
  });
  expect(foreign.status() === 403, `from another origin: ${foreign.status()}`);
  const own = await c.request.post(`${base}/projects/scan`, {
    form: { project: id, _csrf: csrf }, headers: { Origin: base }, maxRedirects: 0,
  });
  expect(own.status() === 303, `with the token, from this origin: ${own.status()}`);
  await c.close();
});

await browser.close();
fs.writeFileSync(path.join(artifacts, "report.json"), JSON.stringify({ checked, failures }, null, 2));
console.log(`checked ${checked.length} page states; screenshots in ${artifacts}`);
if (failures.length) {
  console.error(`${failures.length} failure(s)`);
  process.exit(1);
}
