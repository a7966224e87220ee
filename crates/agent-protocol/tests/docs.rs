//! `docs/agent-protocol.md` is the project's copy of the spec: every message type must appear
//! in its table with its code and name.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code fails loudly"
)]

use zentinel_agent_protocol::{CancelReason, HealthState, MessageType};

const SPEC: &str = include_str!("../../../docs/agent-protocol.md");

#[test]
fn every_message_type_is_in_the_table_with_its_code() {
    for t in MessageType::ALL {
        let row = format!("| 0x{:02x} | {} |", t.code(), t.name());
        assert!(
            SPEC.contains(&row),
            "docs/agent-protocol.md lacks the row `{row}`"
        );
        let section = format!("**{} (0x{:02x})**", t.name(), t.code());
        assert!(
            SPEC.contains(&section),
            "docs/agent-protocol.md has no `{section}`"
        );
    }
}

#[test]
fn cancel_reasons_and_health_states_are_documented() {
    for code in 1..=4u8 {
        let reason = CancelReason::from_code(code);
        assert!(!matches!(reason, CancelReason::Other(_)));
        assert!(
            SPEC.contains(&format!("| {code} | ")),
            "cancel reason {code}"
        );
        assert!(HealthState::from_code(code).is_some());
    }
    assert!(SPEC.contains("1 healthy, 2 degraded,\n3 draining, 4 unhealthy"));
}
