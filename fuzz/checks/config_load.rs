//! What the `config_load` fuzz target checks for one input, shared with the stable replay test
//! (`crates/config/tests/fuzz_replay.rs`) so both run exactly the same code.
//!
//! Any text yields a configuration or diagnostics, never a panic. A configuration builds a
//! route matcher and has a JSON form, and loading the same text again gives the same JSON;
//! rejected text has at least one problem, and the diagnostics render as text and JSON.

/// Runs the checks on one input; panics (with the reason) when an invariant does not hold.
pub(crate) fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match zentinel_config::load_str("fuzz.kdl", text) {
        Ok(config) => {
            let json = config.to_json();
            assert!(!json.is_null(), "a valid configuration has no JSON form");
            let _ = zentinel_config::RouteMatcher::new(&config);
            let again = zentinel_config::load_str("fuzz.kdl", text)
                .map(|c| c.to_json())
                .ok();
            assert_eq!(again.as_ref(), Some(&json), "loading is not deterministic");
        }
        Err(d) => {
            assert!(!d.problems().is_empty(), "rejected without a problem");
            let _ = d.to_string();
            let _ = d.to_json().to_string();
        }
    }
}
