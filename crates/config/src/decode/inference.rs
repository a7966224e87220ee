//! Decoding of a route's `inference` block.

use super::agents::key_parts;
use crate::diagnostic::{Code, Problem};
use crate::model::{Budget, BudgetMode, BudgetPeriod, Inference, Provider, Tokenizer};
use crate::reader::Reader;

/// The `inference` block.
pub(super) fn inference(r: &Reader<'_>) -> Option<Inference> {
    let cx = r.cx();
    let provider = r.enumeration::<Provider>("provider");
    let key = r.string_list("key").and_then(|ks| key_parts(cx, &ks));
    // Absent: no such limit. An invalid value is reported, which fails the configuration.
    let tokens_per_minute = r.uint::<u32>("tokens-per-minute");
    let requests_per_minute = r.uint::<u32>("requests-per-minute");
    let tokenizer = r.enumeration::<Tokenizer>("tokenizer");
    let max_keys = r.uint("max-keys");
    let mut budgets: Vec<Budget> = Vec::new();
    let mut ok = true;
    for (period, b) in r.named("budget") {
        let limit = b.uint::<u64>("limit");
        let mode = b.enumeration::<BudgetMode>("mode");
        let Some(period) = r.to_enum::<BudgetPeriod>("budget", &period.value, period.span) else {
            ok = false;
            continue;
        };
        if budgets.iter().any(|x| x.period == period) {
            cx.report(
                Problem::new(
                    Code::Conflict,
                    b.span(),
                    format!("{}: a `{period}` budget is given twice", r.context()),
                )
                .help("keep one budget per period"),
            );
            ok = false;
            continue;
        }
        match (limit, mode) {
            (Some(limit), Some(mode)) => budgets.push(Budget {
                period,
                limit,
                mode,
            }),
            _ => ok = false,
        }
    }
    Some(Inference {
        provider: provider?,
        key: key?,
        tokens_per_minute,
        requests_per_minute,
        budgets: ok.then_some(budgets)?,
        tokenizer: tokenizer?,
        max_keys: max_keys?,
    })
}
