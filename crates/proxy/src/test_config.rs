//! The smallest valid configuration for unit tests: one listener `w` on `addr`, one upstream
//! `u`, one route `r`, and `extra` (blocks of its own, such as `server { … }`) appended.

use zentinel_config::Config;

#[allow(clippy::panic, reason = "test code fails loudly")]
pub(crate) fn minimal(extra: &str, addr: &str) -> Config {
    let text = format!(
        r#"listeners {{ listener "w" {{ address "{addr}"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:2"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}
{extra}"#
    );
    zentinel_config::load_str("t.kdl", &text).unwrap_or_else(|d| panic!("{d}"))
}
