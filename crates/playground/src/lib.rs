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

    #[test]
    fn defaults_table_is_returned() {
        let out = take(defaults());
        assert_eq!(out, zentinel_config::schema::defaults_table());
        assert!(out.contains("timeout-ms"), "{out}");
    }
}
