//! Any text given to the configuration loader yields a config or diagnostics — never a panic,
//! and the diagnostics always render, in text and JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match zentinel_config::load_str("fuzz.kdl", text) {
        Ok(config) => {
            let _ = config.to_json();
            let _ = zentinel_config::RouteMatcher::new(&config);
        }
        Err(d) => {
            let _ = d.to_string();
            let _ = d.to_json().to_string();
        }
    }
});
