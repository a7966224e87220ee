//! Any bytes given to the agent frame decoder yield frames or a protocol error — never a
//! panic; the checks are in `checks/agent_frame.rs`, which the stable replay test runs too.
#![no_main]

#[path = "../checks/agent_frame.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check(data));
