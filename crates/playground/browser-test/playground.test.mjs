// Headless-browser test of the playground page (crates/playground/web) in Debian's Chromium,
// driven by playwright-core. Serves the page itself on 127.0.0.1 (ephemeral port, Node's http
// module), then: the seed validates; a typo shows its diagnostic at the right line and column
// with the "did you mean" help; a request is explained with the right route; the normalised
// config has the defaults; an nginx config converts to valid KDL; the page also works from
// file:// with the module picked by hand.
// A screenshot per step goes to target/playground-screenshots/ (or $SCREENSHOT_DIR).
// Every wait is bounded (10 s); the whole run is cut off after 60 s. Exit 0 only if all pass.
import { createServer } from 'node:http';
import { readFileSync, mkdirSync, statSync, readdirSync, unlinkSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const ROOT = resolve(HERE, '../../..');
const WEB = resolve(ROOT, 'crates/playground/web');
const WASM = join(WEB, 'zentinel_playground.wasm');
const SHOTS = resolve(process.env.SCREENSHOT_DIR || join(ROOT, 'target/playground-screenshots'));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_TIMEOUT = 10_000;
const TOTAL_TIMEOUT = 60_000;

const started = Date.now();
const watchdog = setTimeout(() => {
  console.error(`FAIL the browser test took longer than ${TOTAL_TIMEOUT / 1000} s`);
  process.exit(1);
}, TOTAL_TIMEOUT);

function fail(message) { throw new Error(message); }
function assert(cond, message) { if (!cond) fail(message); }

try { statSync(WASM); } catch {
  console.error(`FAIL ${WASM} is missing: build it first with scripts/wasm-check.sh`);
  process.exit(1);
}
const seed = readFileSync(join(ROOT, 'examples/seed.kdl'), 'utf8');

// --- a static server for crates/playground/web ------------------------------------------------
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.wasm': 'application/wasm', '.mjs': 'text/javascript; charset=utf-8' };
const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const file = resolve(WEB, '.' + (path.endsWith('/') ? path + 'index.html' : path));
  if (file !== WEB && !file.startsWith(WEB + sep)) { res.writeHead(403).end(); return; }
  let body;
  try { body = readFileSync(file); } catch { res.writeHead(404).end('not found'); return; }
  res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream', 'cache-control': 'no-store' });
  res.end(body);
});
await new Promise((ok, err) => { server.once('error', err); server.listen(0, '127.0.0.1', ok); });
const base = `http://127.0.0.1:${server.address().port}/`;

// --- the browser -------------------------------------------------------------------------------
mkdirSync(SHOTS, { recursive: true });
for (const f of readdirSync(SHOTS)) if (f.endsWith('.png')) unlinkSync(join(SHOTS, f));   // this run's only
const args = ['--disable-gpu', '--disable-dev-shm-usage'];
if (typeof process.getuid === 'function' && process.getuid() === 0) args.push('--no-sandbox');
let browser;
let passed = 0, steps = 0;
const pageErrors = [];

async function step(name, page, fn) {
  const t = Date.now(), n = ++steps;
  try {
    const detail = await fn();
    passed++;
    console.log(`PASS ${name}${detail ? ` (${detail})` : ''} [${Date.now() - t} ms]`);
  } finally {
    const file = join(SHOTS, `${String(n).padStart(2, '0')}-${name.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.png`);
    await page.screenshot({ path: file, fullPage: true, timeout: STEP_TIMEOUT }).catch(() => {});
  }
}
// Replaces exactly one occurrence, so a changed seed fails here loudly rather than passing oddly.
function seedWith(from, to) {
  const i = seed.indexOf(from);
  assert(i >= 0 && seed.indexOf(from, i + 1) < 0, `examples/seed.kdl must contain ${JSON.stringify(from)} exactly once`);
  return seed.slice(0, i) + to + seed.slice(i + from.length);
}
function lineColumn(text, needle) {
  const i = text.indexOf(needle);
  const before = text.slice(0, i);
  return { line: before.split('\n').length, column: [...before.slice(before.lastIndexOf('\n') + 1)].length + 1 };
}

try {
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: STEP_TIMEOUT });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT);
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });

  await step('loads and validates the seed', page, async () => {
    await page.goto(base, { timeout: STEP_TIMEOUT });
    await page.locator('#status[data-state="ready"]').waitFor();
    assert(await page.inputValue('#config') === seed, 'the editor should start with examples/seed.kdl');
    const verdict = page.locator('#verdict[data-state="ok"]');
    await verdict.waitFor();
    const text = await verdict.textContent();
    assert(/2 routes/.test(text) && /2 upstreams/.test(text), `summary should count 2 routes and 2 upstreams: ${text}`);
    return text;
  });

  await step('a typo shows its diagnostic at the right line and column', page, async () => {
    // Type it: put the caret after "time" of "timeout-ms 50" and delete the "e".
    const at = seed.indexOf('timeout-ms 50');
    assert(at >= 0, 'examples/seed.kdl must contain "timeout-ms 50"');
    const broken = seedWith('timeout-ms 50', 'timout-ms 50');
    await page.locator('#config').click();
    await page.evaluate((i) => { const t = document.getElementById('config'); t.focus(); t.setSelectionRange(i, i); }, at + 4);
    await page.keyboard.press('Backspace');
    assert(await page.inputValue('#config') === broken, 'the edit should turn timeout-ms into timout-ms');
    const want = lineColumn(broken, 'timout-ms 50');
    const item = page.locator('#diagnostics li[data-code="unknown-key"]');
    await item.waitFor();
    assert(await page.locator('#verdict[data-state="bad"]').count() === 1, 'the verdict should say the config is invalid');
    const line = Number(await item.getAttribute('data-line')), column = Number(await item.getAttribute('data-column'));
    assert(line === want.line && column === want.column, `diagnostic at ${line}:${column}, expected ${want.line}:${want.column}`);
    const shown = await item.textContent();
    assert(shown.includes(`line ${want.line}, column ${want.column}`), `the list should show the position: ${shown}`);
    const help = await item.locator('.help').textContent();
    assert(/timeout-ms/.test(help), `help should suggest timeout-ms: ${help}`);
    const gutter = page.locator(`#gutter span[data-line="${want.line}"]`);
    assert(await gutter.getAttribute('class') === 'error', `gutter line ${want.line} should be marked`);
    assert(await page.locator('#gutter span.error').count() === 1, 'exactly one gutter line should be marked');
    await item.click();                      // jumps to and selects the offending key
    const sel = await page.evaluate(() => { const t = document.getElementById('config'); return t.value.slice(t.selectionStart, t.selectionEnd); });
    assert(sel === 'timout-ms', `clicking the problem should select the key, selected ${JSON.stringify(sel)}`);
    return `line ${line}, column ${column}: ${help.trim()}`;
  });

  await step('a request is explained with the right route', page, async () => {
    await page.fill('#config', seed);
    await page.locator('#verdict[data-state="ok"]').waitFor();
    await page.click('#tab-explain');
    await page.fill('#req-url', 'http://www.example.com/api/users');
    await page.fill('#req-headers', 'x-test: 1');
    await page.click('#explain-button');
    const route = page.locator('[data-testid="matched-route"]');
    await route.waitFor();
    assert((await route.textContent()).trim() === 'api', `matched route should be "api": ${await route.textContent()}`);
    assert(await page.locator('[data-testid="outcome"][data-action="forward"]').count() === 1, 'the outcome should be forward');
    assert((await page.locator('[data-testid="shadowed"]').textContent()).includes('marketing'), '"marketing" should be shadowed');
    assert(await page.locator('[data-testid="filter"][data-id="waf"]').count() === 1, 'the waf agent should be listed');
    const shown = await page.locator('#explanation').evaluate((e) => [...e.childNodes].filter((c) => c.nodeType === 3).map((c) => c.textContent).join(''));
    assert(shown.trim() === '', `stray text in the explanation: ${JSON.stringify(shown)}`);
    // Another path, another route; an oversized body is refused with 413.
    await page.fill('#req-url', 'http://www.example.com/pricing');
    await page.fill('#req-headers', 'content-length: 99999999999');
    await page.click('#explain-button');
    await page.locator('[data-testid="outcome"][data-action="refuse"]').waitFor();
    assert((await route.textContent()).trim() === 'marketing', `matched route should be "marketing": ${await route.textContent()}`);
    assert((await page.locator('[data-testid="outcome"]').textContent()).includes('413'), 'the refusal should be 413');
    assert(await page.locator('[data-testid="limits"] tr.exceeded').count() === 1, 'one limit should be marked exceeded');
    // A route with token limits shows them.
    await page.click('#tab-config');
    await page.fill('#config', `listeners { listener "web" { address "127.0.0.1:8080"; } }
upstreams { upstream "llm" { target "127.0.0.1:8000"; } }
routes { route "claude" { upstream "llm"; inference { provider "anthropic"; key "header:x-api-key"; tokens-per-minute 80000; budget "daily" { limit 5000; } } } }`);
    await page.locator('#verdict[data-state="ok"]').waitFor();
    await page.click('#tab-explain');
    await page.fill('#req-url', 'http://127.0.0.1:8080/v1/messages');
    await page.fill('#req-headers', '');
    await page.click('#explain-button');
    const inference = page.locator('[data-testid="inference"]');
    await inference.waitFor();
    const text = await inference.textContent();
    assert(text.includes('anthropic') && text.includes('80000') && text.includes('daily 5000 (enforce)') && text.includes('header:x-api-key'),
      `the inference card should show the block: ${text}`);
    await page.click('#tab-config');
    await page.fill('#config', seed);
    await page.locator('#verdict[data-state="ok"]').waitFor();
    return '/api/users -> api; /pricing with a huge body -> marketing, refused 413; token limits shown';
  });

  await step('the normalised config shows the defaults', page, async () => {
    await page.click('#tab-normalised');
    const config = JSON.parse(await page.locator('#normalised').textContent());
    assert(config.routes.length === 2 && config.agents[0].timeout === 50, 'expected the seed\'s 2 routes and the waf timeout of 50 ms');
    assert(config.limits.max_body_bytes === 10485760, `the default body limit should be filled in: ${config.limits.max_body_bytes}`);
    assert(/timeout-ms/.test(await page.locator('#defaults').textContent()), 'the defaults table should be there');
    return `${Object.keys(config).length} top-level keys`;
  });

  await step('an nginx config converts to valid KDL', page, async () => {
    await page.click('#tab-convert');
    await page.selectOption('#conv-from', 'nginx');
    await page.fill('#conv-source', [
      'http {',
      '    upstream app { server 127.0.0.1:9000 weight=2; least_conn; }',
      '    server {',
      '        listen 127.0.0.1:8080;',
      '        server_name example.com;',
      '        location /api/ { proxy_pass http://app; proxy_read_timeout 30s; }',
      '        gzip on;',
      '    }',
      '}', ''].join('\n'));
    await page.click('#convert-button');
    await page.locator('[data-testid="convert-verdict"][data-ok="true"]').waitFor();
    const kdl = await page.locator('#conv-kdl').textContent();
    assert(/^listeners \{/m.test(kdl) && /^routes \{/m.test(kdl) && /^upstreams \{/m.test(kdl), `KDL should have listeners, routes and upstreams:\n${kdl}`);
    const counts = page.locator('[data-testid="report-counts"]');
    const mapped = Number(await counts.locator('.mapped').getAttribute('data-count'));
    const notMapped = Number(await counts.locator('.not-mapped').getAttribute('data-count'));
    const rows = await page.locator('[data-testid="report"] tr').count() - 1;
    assert(mapped > 0 && notMapped === 1, `expected some mapped and one not mapped (gzip): ${await counts.textContent()}`);
    assert(rows >= mapped + notMapped, `the report table should list every directive (${rows} rows)`);
    const stray = await page.locator('#conversion').evaluate((e) => [...e.childNodes].filter((c) => c.nodeType === 3).map((c) => c.textContent).join(''));
    assert(stray.trim() === '', `stray text in the conversion: ${JSON.stringify(stray)}`);
    await page.screenshot({ path: join(SHOTS, '05a-conversion-report.png'), fullPage: true, timeout: STEP_TIMEOUT });
    await page.click('#load-kdl');          // the KDL goes into the editor and validates there
    await page.locator('#panel-config:not([hidden]) #verdict[data-state="ok"]').waitFor();
    assert(await page.inputValue('#config') === kdl, 'the editor should hold the converted KDL');
    assert(await page.evaluate(() => document.getElementById('config').scrollTop) === 0, 'the editor should show the KDL from its first line');
    return (await counts.locator('span').allTextContents()).join(', ');
  });

  await step('works from file:// with the module picked by hand', page, async () => {
    const before = pageErrors.length;
    await page.goto(pathToFileURL(join(WEB, 'index.html')).href, { timeout: STEP_TIMEOUT });
    await page.locator('#picker:not([hidden])').waitFor();
    await page.setInputFiles('#wasm-file', WASM);
    await page.locator('#status[data-state="ready"]').waitFor();
    await page.locator('#verdict[data-state="ok"]').waitFor();
    // From file:// Chromium logs the failed fetch of the module; that error is expected.
    const unexpected = pageErrors.splice(before).filter((e) => !/net::ERR_FAILED|zentinel_playground\.wasm/.test(e));
    pageErrors.push(...unexpected);
    return 'picker shown, module loaded from the file';
  });

  assert(pageErrors.length === 0, `the page logged errors: ${pageErrors.join(' | ')}`);
  console.log(`${passed} passed in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${SHOTS}`);
} catch (err) {
  console.error(`FAIL ${err && err.message ? err.message : err}`);
  if (pageErrors.length) console.error(`page errors: ${pageErrors.join(' | ')}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  server.close();
}
