//! Settings this build of the data plane does not carry out yet. A configuration that uses
//! one is refused at start-up with the list, rather than served with the setting ignored.

use zentinel_config::model::{AgentEvent, Config};

/// Every setting of `config` this build cannot honour, described for the operator.
pub fn unsupported(config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    for a in &config.agents {
        for e in &a.events {
            if matches!(e, AgentEvent::WebsocketFrame | AgentEvent::GuardrailInspect) {
                out.push(format!("agent \"{}\": the `{e}` event", a.id));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_and_production_are_fully_supported() {
        let demo = zentinel_config::load_str("d", include_str!("../../../examples/demo.kdl"))
            .unwrap_or_else(|d| panic!("{d}"));
        assert!(unsupported(&demo).is_empty());
        let prod = zentinel_config::load_str("p", include_str!("../../../examples/production.kdl"))
            .unwrap_or_else(|d| panic!("{d}"));
        assert!(
            !prod.filters.is_empty(),
            "production has a rate-limit filter"
        );
        assert!(prod.admin.is_some(), "production has an admin block");
        assert!(unsupported(&prod).is_empty(), "{:?}", unsupported(&prod));
    }

    #[test]
    fn upstream_tls_is_supported_with_tcp_and_http_probes() {
        let text = |probe: &str| {
            format!(
                r#"listeners {{ listener "w" {{ address "127.0.0.1:1"; }} }}
routes {{ route "r" {{ upstream "u"; }} }}
upstreams {{ upstream "u" {{ target "127.0.0.1:8443"; tls {{ sni "b.test"; }}
    health-check {{ {probe}; }} }} }}"#
            )
        };
        let tcp = zentinel_config::load_str("t", &text("tcp")).unwrap_or_else(|d| panic!("{d}"));
        assert!(unsupported(&tcp).is_empty(), "{:?}", unsupported(&tcp));
        let http = zentinel_config::load_str("t", &text(r#"http "/healthz""#))
            .unwrap_or_else(|d| panic!("{d}"));
        assert!(unsupported(&http).is_empty(), "{:?}", unsupported(&http));
    }
}
