//! `http-request` / `http-response` rules → header policies; the security ones (deny, auth,
//! tracking) → suggestions.

use super::Cx;
use super::parse::Section;
use crate::model::HeaderEdits;
use crate::rules;

const DENY: &str = "the denylist agent (agents/denylist): rules on client-ip, path-prefix, path-regex or headers, named in the route's `filters`";
const AUTH: &str = "an authentication agent in `agents { … }` (events \"request-headers\"), named in the route's `filters`";
const RATE: &str = "a rate-limit filter: filters { filter \"per-ip\" { type \"rate-limit\"; requests-per-second 10; burst 20; } }";

/// Applies the section's header rules to the policies and reports every rule line. Returns
/// the lines of access rules that were not converted.
pub(crate) fn apply(
    cx: &mut Cx<'_>,
    s: &Section,
    request: &mut HeaderEdits,
    response: &mut HeaderEdits,
) -> Vec<usize> {
    let mut open = Vec::new();
    for l in &s.lines {
        let edits = match l.keyword() {
            "http-request" => &mut *request,
            "http-response" => &mut *response,
            _ => continue,
        };
        let action = l.word(1).unwrap_or_default();
        let conditional = l.words.iter().any(|w| w == "if" || w == "unless");
        match action {
            "set-header" | "add-header" | "del-header" => {
                if conditional {
                    cx.ledger.not_mapped(l.id, "conditional header edits are not supported: Zentinel's policies apply to every request of a route");
                    continue;
                }
                match edit(edits, action, l.word(2), l.word(3)) {
                    Ok(()) => cx.ledger.mapped(l.id),
                    Err(why) => cx.ledger.not_mapped(l.id, why),
                }
            }
            "deny" | "reject" | "tarpit" | "silent-drop" => {
                open.push(l.line);
                cx.ledger.not_mapped(
                    l.id,
                    "a security control: Zentinel runs these as agents, not proxy rules",
                );
                let rate = l
                    .words
                    .iter()
                    .any(|w| w.contains("_req_rate") || w.starts_with("sc"));
                cx.ledger.suggest(l.id, if rate { RATE } else { DENY });
            }
            "auth" => {
                open.push(l.line);
                cx.ledger.not_mapped(
                    l.id,
                    "a security control: Zentinel runs these as agents, not proxy rules",
                );
                cx.ledger.suggest(l.id, AUTH);
            }
            a if a.starts_with("track-sc") || a.starts_with("sc-inc") => {
                open.push(l.line);
                cx.ledger.not_mapped(
                    l.id,
                    "stick-table tracking is not supported; rate limits are filters",
                );
                cx.ledger.suggest(l.id, RATE);
            }
            "redirect" => cx.ledger.not_mapped(
                l.id,
                "Zentinel has no redirect responses: every route proxies",
            ),
            "return" => cx.ledger.not_mapped(
                l.id,
                "Zentinel has no static responses: every route proxies",
            ),
            "set-path" | "set-uri" | "replace-path" | "replace-uri" | "set-query" | "set-pathq" => {
                cx.ledger.not_mapped(
                    l.id,
                    "URL rewriting is not supported: requests are forwarded with their path",
                );
            }
            "replace-header" | "replace-value" => cx.ledger.not_mapped(
                l.id,
                "header values cannot be rewritten by pattern; `set` replaces a header",
            ),
            _ => cx.ledger.not_mapped(
                l.id,
                format!("`{} {action}` has no Zentinel equivalent", l.keyword()),
            ),
        }
    }
    open
}

/// The caveat for a section whose access rules were not converted.
pub(crate) fn open_caveat(lines: &[usize]) -> Option<String> {
    (!lines.is_empty()).then(|| {
        let list: Vec<String> = lines.iter().map(|l| format!("line {l}")).collect();
        format!(
            "its access rules are NOT converted ({}), so its routes are open until an agent enforces them",
            list.join(", ")
        )
    })
}

fn edit(
    e: &mut HeaderEdits,
    action: &str,
    name: Option<&str>,
    value: Option<&str>,
) -> Result<(), String> {
    let name = rules::editable_header(name.ok_or("no header name")?)?;
    if action == "del-header" {
        return e.try_remove(&name).map_err(str::to_owned);
    }
    let value = value.ok_or("no value")?;
    if value.contains('%') {
        return Err(
            "the value is a log-format expression (%[…]), which Zentinel cannot evaluate"
                .to_owned(),
        );
    }
    rules::header_value(value)?;
    match action {
        "set-header" => e.try_set(&name, value),
        _ => e.try_add(&name, value),
    }
    .map_err(str::to_owned)
}
