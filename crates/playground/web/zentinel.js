// Loader for zentinel_playground.wasm (plain C ABI, no imports). Works in browsers and Node.
// A classic script, not an ES module, so that the page also works from file:// (Chromium
// refuses module scripts there): in a browser it defines `window.zentinel.load`; in Node it is
// a CommonJS module (`import zentinel from './zentinel.js'`, then `zentinel.load(...)`).
// `source`: bytes (ArrayBuffer / typed array), a compiled WebAssembly.Module, or a URL to fetch
// (by default zentinel_playground.wasm next to this script).
// Re-reads `memory.buffer` after every call into wasm: memory growth detaches older views.
(function (root) {
  'use strict';
  const here = typeof document !== 'undefined' && document.currentScript ? document.currentScript.src : null;

  async function load(source) {
    if (source === undefined) {
      if (!here) throw new Error('zentinel wasm: no source given');
      source = new URL('./zentinel_playground.wasm', here);
    }
    let instance;
    if (source instanceof WebAssembly.Module) {
      instance = await WebAssembly.instantiate(source, {});
    } else if (source instanceof ArrayBuffer || ArrayBuffer.isView(source)) {
      ({ instance } = await WebAssembly.instantiate(source, {}));
    } else {
      const response = await fetch(source);
      if (!response.ok) throw new Error(`fetching ${source}: HTTP ${response.status}`);
      ({ instance } = await WebAssembly.instantiate(await response.arrayBuffer(), {}));
    }
    const x = instance.exports, enc = new TextEncoder(), dec = new TextDecoder('utf-8', { fatal: true });
    const take = (r) => {                     // read a result (u32 LE length + UTF-8), then free it
      if (r === 0) throw new Error('zentinel wasm: null result');
      const len = new DataView(x.memory.buffer).getUint32(r, true);
      const text = dec.decode(new Uint8Array(x.memory.buffer, r + 4, len));
      x.free_result(r);
      return text;
    };
    const call = (fn, input) => {             // copy input in, call, read and free the JSON result
      const bytes = typeof input === 'string' ? enc.encode(input) : input;  // or raw Uint8Array
      const p = x.alloc(bytes.length);
      if (p === 0 && bytes.length > 0) throw new Error('zentinel wasm: out of memory');
      new Uint8Array(x.memory.buffer, p, bytes.length).set(bytes);
      const r = fn(p, bytes.length);
      x.dealloc(p, bytes.length);
      return JSON.parse(take(r));
    };
    return {
      exports: x,
      // -> {ok:true, summary, config} | {ok:false, problems}
      validate: (text) => call(x.validate, text),
      // {config, method, url, headers?: ["name: value"], client_ip?, listener?}
      // -> {ok:true, explanation} (as `zentinel explain --format json`) | validator report | {ok:false, error}
      explain: (request) => call(x.explain, JSON.stringify(request)),
      // {from: "nginx"|"haproxy"|"traefik-yaml"|"traefik-toml", text, listen?}
      // -> the conversion, as `zentinel convert --format json` | {ok:false, error}
      convert: (request) => call(x.convert, JSON.stringify(request)),
      defaults: () => take(x.defaults()),     // the defaults table, as `zentinel config defaults`
    };
  }

  if (typeof module === 'object' && module.exports) module.exports = { load };
  else root.zentinel = { load };
})(typeof globalThis !== 'undefined' ? globalThis : this);
