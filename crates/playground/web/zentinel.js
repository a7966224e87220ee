// Loader for zentinel_playground.wasm (plain C ABI, no imports). Works in browsers and Node.
// `source`: bytes (ArrayBuffer / typed array), a compiled WebAssembly.Module, or a URL to fetch.
// Re-reads `memory.buffer` after every call into wasm: memory growth detaches older views.
export async function load(source = new URL('./zentinel_playground.wasm', import.meta.url)) {
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
  return {
    exports: x,
    validate(text) {                        // -> {ok:true, summary, config} | {ok:false, problems}
      const bytes = typeof text === 'string' ? enc.encode(text) : text;   // or raw Uint8Array
      const p = x.alloc(bytes.length);
      if (p === 0 && bytes.length > 0) throw new Error('zentinel wasm: out of memory');
      new Uint8Array(x.memory.buffer, p, bytes.length).set(bytes);
      const r = x.validate(p, bytes.length);
      x.dealloc(p, bytes.length);
      return JSON.parse(take(r));
    },
    defaults: () => take(x.defaults()),     // the defaults table, as `zentinel config defaults`
  };
}
