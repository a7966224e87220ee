// CI check of the playground wasm module in Node 20, through the same loader the browser uses.
// Usage: node crates/playground/web/node-check.mjs path/to/zentinel_playground.wasm [path/to/zentinel]
// With the `zentinel` binary, the explain and convert exports are compared with the CLI's JSON.
// Prints PASS/FAIL per case and a summary; exits nonzero if any case fails.
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zentinelLoader from './zentinel.js';   // a classic script; CommonJS in Node

const { load } = zentinelLoader;

const wasmPath = process.argv[2];
if (!wasmPath) {
  console.error('usage: node node-check.mjs path/to/zentinel_playground.wasm');
  process.exit(2);
}
const bytes = readFileSync(wasmPath);
const seedUrl = new URL('../../../examples/seed.kdl', import.meta.url);
const seed = readFileSync(seedUrl, 'utf8');

let passed = 0, failed = 0;
async function check(name, fn) {
  try {
    const detail = await fn();
    passed++;
    console.log(`PASS ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err && err.message ? err.message : err}`);
  }
}
function assert(cond, message, value) {
  if (!cond) throw new Error(value === undefined ? message : `${message}; got ${JSON.stringify(value)}`);
}
// Replaces exactly one occurrence of `from` in the seed, so a changed seed fails loudly here.
function seedWith(from, to) {
  const i = seed.indexOf(from);
  assert(i >= 0 && seed.indexOf(from, i + 1) < 0, `examples/seed.kdl must contain ${JSON.stringify(from)} exactly once`);
  return seed.slice(0, i) + to + seed.slice(i + from.length);
}
// 1-based line and column (in Unicode scalar values, as the Rust side counts) and UTF-8 byte
// offset of the first occurrence of `needle` in `text`.
function position(text, needle) {
  const i = text.indexOf(needle);
  assert(i >= 0, `test text must contain ${JSON.stringify(needle)}`);
  const before = text.slice(0, i), lineStart = before.lastIndexOf('\n') + 1;
  return {
    line: before.split('\n').length,
    column: [...before.slice(lineStart)].length + 1,
    offset: Buffer.byteLength(before, 'utf8'),
  };
}
function problem(report, code) {
  assert(report && report.ok === false, 'expected ok:false', report);
  assert(Array.isArray(report.problems), 'expected a problems array', report);
  const p = report.problems.find((q) => q.code === code);
  assert(p, `expected a problem with code "${code}"`, report.problems.map((q) => q.code));
  return p;
}
function at(p, want) {
  for (const k of ['line', 'column', 'offset']) {
    assert(p[k] === want[k], `${k} should be ${want[k]}`, { line: p.line, column: p.column, offset: p.offset });
  }
}

const module = new WebAssembly.Module(bytes);
const zentinel = await load(module);
const memory = zentinel.exports.memory;

await check('module has no imports and instantiates with {}', () => {
  const imports = WebAssembly.Module.imports(module);
  assert(imports.length === 0, 'expected no imports', imports);
  const names = WebAssembly.Module.exports(module).map((e) => e.name);
  for (const n of ['memory', 'alloc', 'dealloc', 'validate', 'free_result', 'defaults']) {
    assert(names.includes(n), `missing export ${n}`, names);
  }
  return `${bytes.length} bytes`;
});

await check('valid config (examples/seed.kdl) is ok:true', () => {
  const r = zentinel.validate(seed);
  assert(r.ok === true, 'expected ok:true', r.problems);
  assert(r.summary && r.summary.routes === 2 && r.summary.upstreams === 2 && r.summary.agents === 1,
    'summary should count 2 routes, 2 upstreams, 1 agent', r.summary);
  assert(r.config && Array.isArray(r.config.routes), 'expected the resolved config', Object.keys(r));
  return JSON.stringify(r.summary);
});

await check('typo `timout-ms 50` in an agent is unknown-key at its line/column with a suggestion', () => {
  const text = seedWith('\ntimeout-ms 50\n', '\n    timout-ms 50\n');
  const p = problem(zentinel.validate(text), 'unknown-key');
  at(p, position(text, 'timout-ms 50'));
  assert(p.length === 'timout-ms'.length, 'length should cover the key', p.length);
  assert(typeof p.help === 'string' && p.help.includes('timeout-ms'), 'help should suggest timeout-ms', p.help);
  assert(p.severity === 'error' && typeof p.file === 'string', 'severity/file', p);
  return `line ${p.line}, column ${p.column}: ${p.message}; help: ${p.help}`;
});

await check('KDL syntax error is code "syntax" with a line number', () => {
  const text = 'listeners {\n    listener "web" {\n        address "127.0.0.1:8080\n' +
    '        protocol "http"\n    }\n}\n';
  const p = problem(zentinel.validate(text), 'syntax');
  assert(Number.isInteger(p.line) && Number.isInteger(p.column), 'line/column should be integers', p);
  assert(p.line === 3, 'the unterminated string is on line 3', p.line);
  return `line ${p.line}, column ${p.column}: ${p.message}`;
});

await check('dangling upstream reference is unknown-reference', () => {
  const text = seedWith('upstream "static-backend"\n', 'upstream "static-backnd"\n');
  const p = problem(zentinel.validate(text), 'unknown-reference');
  at(p, position(text, '"static-backnd"'));
  assert(typeof p.help === 'string' && p.help.includes('static-backend'), 'help should suggest static-backend', p.help);
  return `line ${p.line}, column ${p.column}: ${p.message}`;
});

await check('non-ASCII input: ok with Unicode comments; columns count characters, offsets bytes', () => {
  const ok = zentinel.validate('// Größe — 設定 🚀 ünïcödé\n' +
    seedWith('\ntimeout-ms 50\n', '\ntimeout-ms 50 /* Zeitüberschreitung ⏱ 🚀 */\n'));
  assert(ok.ok === true, 'Unicode in comments should be valid', ok.problems);
  const text = seedWith('\ntimeout-ms 50\n', '\ntimeout-ms 50\n/* größe 🚀 */ grüße-ms 5\n');
  const p = problem(zentinel.validate(text), 'unknown-key');
  at(p, position(text, 'grüße-ms'));
  assert(p.message.includes('`grüße-ms`'), 'message should quote the Unicode key intact', p.message);
  const bad = zentinel.validate(new Uint8Array([0x2f, 0x2f, 0x20, 0xff, 0xfe, 0x0a]));   // "// \xff\xfe\n"
  const q = problem(bad, 'syntax');
  assert(q.line === 1 && q.column === 4 && q.offset === 3, 'invalid UTF-8 located at byte 3', q);
  return `column ${p.column} vs byte offset ${p.offset}; invalid UTF-8: "${q.message}"`;
});

await check('large input grows memory mid-call; the loader re-reads memory.buffer', () => {
  const before = memory.buffer.byteLength;
  const big = seed + ('\n// ' + 'padding '.repeat(12) + 'ü').repeat(3000);   // ~300 KB
  const r = zentinel.validate(big);
  assert(memory.buffer.byteLength > before, 'expected memory to grow', memory.buffer.byteLength);
  assert(r.ok === true, 'expected ok:true', r.problems);
  const s = zentinel.validate(big + '\nbogus-key 1\n');
  const p = problem(s, 'unknown-key');
  at(p, position(big + '\nbogus-key 1\n', 'bogus-key 1'));
  return `${big.length} chars; memory ${before} -> ${memory.buffer.byteLength} bytes`;
});

await check('2000 calls keep memory bounded', () => {
  const typo = seedWith('\ntimeout-ms 50\n', '\ntimout-ms 50\n');
  const inputs = [seed, typo, 'listeners {', '// ünïcödé 🚀\n' + seed, 'x'.repeat(3000)];
  const run = (n) => { for (let i = 0; i < n; i++) zentinel.validate(inputs[i % inputs.length]); };
  run(200);                                   // warm up: the allocator reaches its working set
  const warm = memory.buffer.byteLength;
  const sizes = [];
  for (let round = 0; round < 4; round++) { run(500); sizes.push(memory.buffer.byteLength); }
  const growth = sizes[sizes.length - 1] - warm;
  assert(growth <= 64 * 1024, `memory grew by ${growth} bytes after warm-up`, { warm, sizes });
  assert(zentinel.validate(seed).ok === true, 'still correct after 2000 calls');
  return `${(warm / 1048576).toFixed(2)} MiB after warm-up, ${(sizes.at(-1) / 1048576).toFixed(2)} MiB after 2000 more`;
});

await check('defaults table export', () => {
  const t = zentinel.defaults();
  assert(typeof t === 'string' && t.includes('timeout-ms') && t.split('\n').length > 20, 'expected the defaults table', t.slice(0, 200));
  return `${t.split('\n').length} lines`;
});

await check('index.html embeds examples/seed.kdl verbatim (the editor starts with it, offline)', () => {
  const html = readFileSync(new URL('./index.html', import.meta.url), 'utf8');
  const m = html.match(/<script type="text\/plain" id="seed">([\s\S]*?)<\/script>/);
  assert(m, 'index.html should have <script type="text/plain" id="seed">');
  assert(m[1] === seed, 'the seed in index.html differs from examples/seed.kdl: copy the file in again');
  return `${m[1].split('\n').length} lines`;
});

const cli = process.argv[3];
const seedPath = new URL('../../../examples/seed.kdl', import.meta.url).pathname;

await check('explain export agrees with `zentinel explain --format json`', () => {
  const request = { config: seed, method: 'GET', url: 'http://www.example.com/', headers: ['x-test: 1'] };
  const r = zentinel.explain(request);
  assert(r.ok === true, 'expected ok:true', r);
  assert(r.explanation.routing && r.explanation.outcome, 'expected routing and outcome', Object.keys(r.explanation));
  assert(cli, 'the zentinel binary path is needed (second argument)');
  const out = execFileSync(cli, ['explain', '-c', seedPath, '--format', 'json', '-H', 'x-test: 1', 'GET', 'http://www.example.com/']);
  assert(JSON.stringify(JSON.parse(out)) === JSON.stringify(r.explanation), 'wasm and CLI explanations differ');
  const bad = zentinel.explain({ ...request, config: 'listeners {' });
  problem(bad, 'syntax');
  return `route ${JSON.stringify(r.explanation.routing.matched && r.explanation.routing.matched.id)}, identical to the CLI`;
});

await check('convert export agrees with `zentinel convert --format json`', () => {
  const nginx = 'http {\n  upstream app { server 127.0.0.1:9000 weight=2; }\n  server {\n    listen 127.0.0.1:8080;\n    location /api/ { proxy_pass http://app; }\n  }\n}\n';
  const r = zentinel.convert({ from: 'nginx', text: nginx });
  assert(typeof r.kdl === 'string' && r.kdl.includes('listener'), 'expected KDL with a listener', r);
  assert(zentinel.validate(r.kdl).ok === true, 'the converted KDL validates in the same module');
  assert(cli, 'the zentinel binary path is needed (second argument)');
  const dir = mkdtempSync(join(tmpdir(), 'zentinel-convert-'));
  writeFileSync(join(dir, 'nginx.conf'), nginx);
  const out = execFileSync(cli, ['convert', '--from', 'nginx', '--format', 'json', join(dir, 'nginx.conf')], { stdio: ['ignore', 'pipe', 'ignore'] });
  assert(JSON.stringify(JSON.parse(out)) === JSON.stringify(r), 'wasm and CLI conversions differ');
  return `${r.report.length} directives reported, identical to the CLI`;
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
