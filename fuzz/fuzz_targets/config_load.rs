//! Any text given to the configuration loader yields a config or diagnostics — never a panic;
//! the checks are in `checks/config_load.rs`, which the stable replay test runs too.
#![no_main]

#[path = "../checks/config_load.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
