//! Rendering of diagnostics and summaries; shared by `validate` and `run` so both print
//! exactly the same text.

use std::io::IsTerminal;

use miette::{GraphicalReportHandler, GraphicalTheme};
use zentinel_config::{Config, Diagnostics};

/// Every problem with its source lines, file, line and column, and hint.
pub(crate) fn render(d: &Diagnostics) -> String {
    let theme = if std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_context_lines(1);
    let mut out = String::new();
    for (report, problem) in d.reports().zip(d.problems()) {
        // The location first, on its own line, so it can be grepped and clicked.
        if let Some(span) = problem.span {
            out.push_str(&format!(
                "{}: error[{}]\n",
                d.location(span),
                problem.code.as_str()
            ));
        }
        if handler.render_report(&mut out, &report).is_err() {
            out.push_str(&format!("error: {}\n", problem.message));
        }
    }
    out
}

/// "3 problems".
pub(crate) fn count(d: &Diagnostics) -> String {
    match d.problems().len() {
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    }
}

/// "1 listener, 2 routes, …".
pub(crate) fn summary(c: &Config) -> String {
    fn n(count: usize, what: &str) -> String {
        format!("{count} {what}{}", if count == 1 { "" } else { "s" })
    }
    [
        n(c.listeners.len(), "listener"),
        n(c.routes.len(), "route"),
        n(c.upstreams.len(), "upstream"),
        n(c.agents.len(), "agent"),
        n(c.filters.len(), "filter"),
    ]
    .join(", ")
}
