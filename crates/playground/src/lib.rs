//! WebAssembly exports of [`zentinel_config`] for the browser playground.
//!
//! Plain C ABI: no wasm-bindgen, and the module has no imports. The calling protocol, which
//! `web/zentinel.js` implements:
//!
//! 1. `p = alloc(n)`, copy `n` bytes of UTF-8 configuration text to `p`;
//! 2. `r = validate(p, n)`, then `dealloc(p, n)`;
//! 3. `r` points at a result: a `u32` little-endian length, then that many bytes of UTF-8
//!    JSON (see [`zentinel_config::validate_to_json`]); read it, then `free_result(r)`.
//!
//! `defaults()` returns a result the same way, holding the defaults table as plain text.
//!
//! `explain(p, n)` and `convert(p, n)` take a JSON request the same way and return JSON:
//! the explanation of one request by one configuration (the `zentinel explain` structure),
//! and a conversion from nginx / HAProxy / Traefik (the `zentinel convert --format json`
//! document). Both run the same crates as the CLI, so they cannot disagree with it.
//!
//! The symbols are unmangled only on `wasm32`. A native build (the unit tests below) does not
//! export C symbols named `alloc` or `validate`; there they are ordinary Rust functions.

use std::alloc::Layout;
use std::ptr::{self, NonNull};

use zentinel_config::source::line_col;

/// The file name that problems report (a single text has no real file).
const FILE_NAME: &str = "playground.kdl";

/// Bytes before the payload of a result: the payload's length as a little-endian `u32`.
const HEADER: usize = 4;

/// Allocates `len` bytes for the caller to write input into. Returns null if the memory cannot
/// be had. Free with [`dealloc`] and the same `len`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(
    unsafe_code,
    reason = "a C-ABI export that hands raw memory to JavaScript"
)]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    if len == 0 {
        return NonNull::dangling().as_ptr();
    }
    let Ok(layout) = Layout::from_size_align(len, 1) else {
        return ptr::null_mut();
    };
    // SAFETY: `layout` has a non-zero size (`len == 0` returned above). A null return (out
    // of memory) is passed on to the caller.
    unsafe { std::alloc::alloc(layout) }
}

/// Frees memory from [`alloc`]. Null or `len == 0` is a no-op.
///
/// # Safety
///
/// `ptr` must come from `alloc(len)` with this same `len` and must not have been freed yet.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(
    unsafe_code,
    reason = "a C-ABI export that frees memory given to JavaScript"
)]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, len: usize) {
    if ptr.is_null() || len == 0 {
        return;
    }
    let Ok(layout) = Layout::from_size_align(len, 1) else {
        return;
    };
    // SAFETY: by the contract above, `ptr` was returned by `alloc(len)`, which allocated it
    // from the global allocator with exactly this layout, and it is still live.
    unsafe { std::alloc::dealloc(ptr, layout) }
}

/// Validates the `len` bytes at `ptr` as one configuration file and returns a result (see the
/// crate docs) holding the JSON report. Input that is not UTF-8 gives a `syntax` problem,
/// never a trap. Returns null only if the report does not fit a `u32` length.
///
/// # Safety
///
/// Unless `len` is 0, `ptr` must point at `len` initialized bytes that nothing writes to
/// during the call (for example memory from [`alloc`]). A null `ptr` with `len > 0` is
/// reported as an error, not dereferenced.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(
    unsafe_code,
    reason = "a C-ABI export that reads input from a raw pointer"
)]
pub unsafe extern "C" fn validate(ptr: *const u8, len: usize) -> *mut u8 {
    let json = if len == 0 {
        zentinel_config::validate_to_json(FILE_NAME, "")
    } else if ptr.is_null() {
        input_problem("no input: null pointer with a non-zero length", 1, 1, 0, 0)
    } else {
        // SAFETY: `ptr` is non-null and, by the contract above, points at `len` initialized
        // bytes that stay unchanged while this borrow lives (it ends before we return).
        let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
        validate_bytes(bytes)
    };
    into_result(&json)
}

/// Frees a result from [`validate`] or [`defaults`]. Null is a no-op.
///
/// # Safety
///
/// `ptr` must be null or a result returned by this module that has not been freed yet.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(
    unsafe_code,
    reason = "a C-ABI export that frees a result given to JavaScript"
)]
pub unsafe extern "C" fn free_result(ptr: *mut u8) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: a result starts with a `HEADER`-byte length, so these bytes are readable;
    // `[u8; 4]` has alignment 1, so any pointer is aligned for it.
    let header = unsafe { ptr.cast::<[u8; HEADER]>().read() };
    let Ok(payload) = usize::try_from(u32::from_le_bytes(header)) else {
        return;
    };
    let slice = ptr::slice_from_raw_parts_mut(ptr, HEADER + payload);
    // SAFETY: `into_result` made this pointer with `Box::into_raw` from a `Box<[u8]>` of
    // exactly `HEADER + payload` bytes, and by the contract above it was not freed yet.
    drop(unsafe { Box::from_raw(slice) });
}

/// Returns a result (see the crate docs) holding the defaults table: every key with its
/// default and meaning, one per line, as `zentinel config defaults` prints it.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(unsafe_code, reason = "`no_mangle` on a C-ABI export")]
pub extern "C" fn defaults() -> *mut u8 {
    into_result(&zentinel_config::schema::defaults_table())
}

/// Explains one request. Input: `{"config": "<KDL>", "method": "GET", "url": "https://…",
/// "headers": ["name: value", …], "client_ip": "203.0.113.7", "listener": "<id>"}` (the last
/// three optional). Output: `{"ok": true, "explanation": …}`, the validator's report when the
/// configuration is invalid, or `{"ok": false, "error": "…"}` for a bad request.
///
/// # Safety
///
/// As for [`validate`].
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(
    unsafe_code,
    reason = "a C-ABI export that reads input from a raw pointer"
)]
pub unsafe extern "C" fn explain(ptr: *const u8, len: usize) -> *mut u8 {
    // SAFETY: the caller upholds `validate`'s contract for `ptr` and `len`.
    let input = unsafe { input(ptr, len) };
    into_result(&input.map_or_else(|e| error(&e), |text| explain_json(&text)))
}

/// Converts a configuration. Input: `{"from": "nginx"|"haproxy"|"traefik-yaml"|
/// "traefik-toml", "text": "…", "listen": "ip:port"}` (`listen` optional). Output: the
/// conversion (`kdl`, `report`, `blockers`, validity), or `{"ok": false, "error": "…"}`.
///
/// # Safety
///
/// As for [`validate`].
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
#[allow(
    unsafe_code,
    reason = "a C-ABI export that reads input from a raw pointer"
)]
pub unsafe extern "C" fn convert(ptr: *const u8, len: usize) -> *mut u8 {
    // SAFETY: the caller upholds `validate`'s contract for `ptr` and `len`.
    let input = unsafe { input(ptr, len) };
    into_result(&input.map_or_else(|e| error(&e), |text| convert_json(&text)))
}

/// The input of a JSON-taking export as text.
///
/// # Safety
///
/// As for [`validate`].
#[allow(unsafe_code, reason = "reads the caller's input from a raw pointer")]
unsafe fn input(ptr: *const u8, len: usize) -> Result<String, String> {
    if len == 0 {
        return Ok(String::new());
    }
    if ptr.is_null() {
        return Err("no input: null pointer with a non-zero length".to_owned());
    }
    // SAFETY: `ptr` is non-null and points at `len` initialized bytes (the caller's contract).
    let bytes = unsafe { std::slice::from_raw_parts(ptr, len) };
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|e| format!("the input is not valid UTF-8: {e}"))
}

fn error(message: &str) -> String {
    serde_json::json!({ "ok": false, "error": message }).to_string()
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> Result<&'a str, String> {
    v.get(name)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| format!("`{name}` (a string) is required"))
}

fn explain_json(text: &str) -> String {
    let run = || -> Result<String, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("the request is not JSON: {e}"))?;
        let config_text = field(&v, "config")?;
        let config = match zentinel_config::load_str(FILE_NAME, config_text) {
            Ok(c) => c,
            Err(_) => return Ok(zentinel_config::validate_to_json(FILE_NAME, config_text)),
        };
        let mut request = zentinel_config::explain::RequestDescription::from_url(
            field(&v, "method")?,
            field(&v, "url")?,
        )
        .map_err(|e| e.to_string())?;
        for h in v
            .get("headers")
            .and_then(|h| h.as_array())
            .into_iter()
            .flatten()
        {
            let line = h
                .as_str()
                .ok_or("`headers` holds strings like \"name: value\"")?;
            request.header_line(line).map_err(|e| e.to_string())?;
        }
        if let Some(ip) = v.get("client_ip").and_then(serde_json::Value::as_str) {
            request.client_ip = Some(
                ip.parse()
                    .map_err(|_| format!("client_ip {ip:?} is not an IP address"))?,
            );
        }
        let listener = v.get("listener").and_then(serde_json::Value::as_str);
        let e = zentinel_config::explain::explain(&config, listener, &request)
            .map_err(|e| e.to_string())?;
        // Serialized directly (not through a `Value`, which would sort the keys), so the
        // text is the CLI's `--format json` byte for byte.
        let explanation = serde_json::to_string(&e).map_err(|e| e.to_string())?;
        Ok(format!(r#"{{"ok":true,"explanation":{explanation}}}"#))
    };
    run().unwrap_or_else(|e| error(&e))
}

fn convert_json(text: &str) -> String {
    let run = || -> Result<String, String> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("the request is not JSON: {e}"))?;
        let from: zentinel_convert::Source = field(&v, "from")?
            .parse()
            .map_err(|_| "`from` is nginx, haproxy, traefik-yaml or traefik-toml".to_owned())?;
        let mut options = zentinel_convert::ConvertOptions::default();
        if let Some(addr) = v.get("listen").and_then(serde_json::Value::as_str) {
            let addr = addr
                .parse()
                .map_err(|_| format!("listen {addr:?} is not an ip:port address"))?;
            options = zentinel_convert::ConvertOptions::with_default_listen(addr);
        }
        let c = zentinel_convert::convert_with(from, field(&v, "text")?, &options);
        Ok(c.to_json().to_string())
    };
    run().unwrap_or_else(|e| error(&e))
}

/// The JSON report for raw input bytes.
fn validate_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => zentinel_config::validate_to_json(FILE_NAME, text),
        Err(err) => {
            let offset = err.valid_up_to();
            let length = err
                .error_len()
                .unwrap_or(bytes.len().saturating_sub(offset));
            // The bytes before `offset` are valid UTF-8 by definition of `valid_up_to`.
            let before =
                std::str::from_utf8(bytes.get(..offset).unwrap_or_default()).unwrap_or_default();
            let (line, column) = line_col(before, offset);
            input_problem("the input is not valid UTF-8", line, column, offset, length)
        }
    }
}

/// A one-problem report in the shape of `Diagnostics::to_json`, for input that never reached
/// the configuration crate. `message` must not need JSON escaping.
fn input_problem(message: &str, line: usize, column: usize, offset: usize, len: usize) -> String {
    format!(
        concat!(
            r#"{{"ok":false,"problems":[{{"severity":"error","code":"syntax","#,
            r#""message":"{message}","file":"{file}","line":{line},"column":{column},"#,
            r#""offset":{offset},"length":{len},"label":"not UTF-8","#,
            r#""help":"a configuration is UTF-8 text; save the file as UTF-8","related":[]}}]}}"#,
        ),
        message = message,
        file = FILE_NAME,
        line = line,
        column = column,
        offset = offset,
        len = len,
    )
}

/// Boxes `payload` behind its `u32` LE length and leaks it to the caller. Null if the length
/// does not fit a `u32`.
fn into_result(payload: &str) -> *mut u8 {
    let Ok(len) = u32::try_from(payload.len()) else {
        return ptr::null_mut();
    };
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(payload.as_bytes());
    Box::into_raw(out.into_boxed_slice()).cast::<u8>()
}

#[cfg(test)]
#[allow(unsafe_code, reason = "the tests call the exports as JavaScript does")]
mod tests {
    use super::*;

    /// Reads and frees a result, as the JavaScript loader does.
    fn take(result: *mut u8) -> String {
        assert!(!result.is_null());
        // SAFETY: `result` is a live result from this module: a 4-byte length, then payload.
        let text = unsafe {
            let len = u32::from_le_bytes(result.cast::<[u8; HEADER]>().read()) as usize;
            let bytes = std::slice::from_raw_parts(result.add(HEADER), len);
            String::from_utf8(bytes.to_vec()).unwrap()
        };
        // SAFETY: `result` came from this module and is freed once, here.
        unsafe { free_result(result) };
        text
    }

    /// One round trip through `alloc` / `validate` / `dealloc` / `free_result`.
    fn call(input: &[u8]) -> String {
        let p = alloc(input.len());
        assert!(!p.is_null());
        // SAFETY: `p` holds `input.len()` bytes from `alloc`, freed once with the same length.
        let r = unsafe {
            ptr::copy_nonoverlapping(input.as_ptr(), p, input.len());
            let r = validate(p, input.len());
            dealloc(p, input.len());
            r
        };
        take(r)
    }

    #[test]
    fn seed_config_round_trips_ok() {
        let out = call(include_bytes!("../../../examples/seed.kdl"));
        // serde_json sorts keys, so `ok` is not first.
        assert!(out.contains(r#""ok":true"#), "{out}");
        assert!(out.contains(r#""summary""#), "{out}");
    }

    #[test]
    fn typo_is_an_unknown_key_with_a_suggestion() {
        let text = "agents {\n    agent \"waf\" {\n        timout-ms 50\n    }\n}\n";
        let out = call(text.as_bytes());
        assert!(out.contains(r#""ok":false"#), "{out}");
        assert!(out.contains(r#""code":"unknown-key""#), "{out}");
        assert!(out.contains("timeout-ms"), "{out}");
    }

    #[test]
    fn invalid_utf8_is_a_json_problem_not_a_panic() {
        let out = call(b"listeners {\n  \xff\xfe }\n");
        assert!(out.contains(r#""ok":false"#), "{out}");
        assert!(out.contains(r#""code":"syntax""#), "{out}");
        assert!(
            out.contains(r#""line":2,"column":3,"offset":14,"length":1"#),
            "{out}"
        );
        // Truncated multi-byte character at the very end.
        let out = call("é".as_bytes().get(..1).unwrap());
        assert!(out.contains(r#""offset":0,"length":1"#), "{out}");
    }

    #[test]
    fn empty_and_null_inputs_do_not_trap() {
        let out = call(b"");
        assert!(out.contains(r#""ok":"#), "{out}");
        // SAFETY: a null pointer is documented to be reported, not dereferenced.
        let out = take(unsafe { validate(ptr::null(), 5) });
        assert!(out.contains("null pointer"), "{out}");
        // SAFETY: null is a documented no-op for both.
        unsafe {
            dealloc(ptr::null_mut(), 3);
            free_result(ptr::null_mut());
        }
    }

    /// One round trip through a JSON-taking export.
    fn call_with(f: unsafe extern "C" fn(*const u8, usize) -> *mut u8, input: &str) -> String {
        let p = alloc(input.len());
        // SAFETY: as in `call`.
        let r = unsafe {
            ptr::copy_nonoverlapping(input.as_ptr(), p, input.len());
            let r = f(p, input.len());
            dealloc(p, input.len());
            r
        };
        take(r)
    }

    #[test]
    fn explain_matches_the_library_and_reports_bad_input() {
        let seed = include_str!("../../../examples/seed.kdl");
        let req = serde_json::json!({
            "config": seed, "method": "GET", "url": "http://www.example.com/",
        });
        let out: serde_json::Value =
            serde_json::from_str(&call_with(explain, &req.to_string())).unwrap();
        assert_eq!(out["ok"], true, "{out}");
        let config = zentinel_config::load_str(FILE_NAME, seed).unwrap();
        let r = zentinel_config::explain::RequestDescription::from_url(
            "GET",
            "http://www.example.com/",
        )
        .unwrap();
        let lib = zentinel_config::explain::explain(&config, None, &r).unwrap();
        assert_eq!(out["explanation"], serde_json::to_value(&lib).unwrap());
        let bad = call_with(
            explain,
            r#"{"config": "listeners {", "method": "GET", "url": "http://x/"}"#,
        );
        assert!(bad.contains(r#""code":"syntax""#), "{bad}");
        let bad = call_with(explain, "not json");
        assert!(bad.contains("not JSON"), "{bad}");
    }

    #[test]
    fn convert_matches_the_library() {
        let nginx = "http { server { listen 127.0.0.1:8080; location / { proxy_pass http://127.0.0.1:9000; } } }";
        let req = serde_json::json!({ "from": "nginx", "text": nginx });
        let out: serde_json::Value =
            serde_json::from_str(&call_with(convert, &req.to_string())).unwrap();
        let lib = zentinel_convert::convert(zentinel_convert::Source::Nginx, nginx).to_json();
        assert_eq!(out, lib);
        let bad = call_with(convert, r#"{"from": "apache", "text": ""}"#);
        assert!(bad.contains(r#""ok":false"#), "{bad}");
    }

    #[test]
    fn defaults_table_is_returned() {
        let out = take(defaults());
        assert_eq!(out, zentinel_config::schema::defaults_table());
        assert!(out.contains("timeout-ms"), "{out}");
    }
}
