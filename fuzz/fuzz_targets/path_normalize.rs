//! Any request path yields a normal path that means what the request meant, or a refusal —
//! never a panic; the checks are in `checks/path_normalize.rs`, which the stable replay test
//! runs too.
#![no_main]

#[path = "../checks/path_normalize.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
