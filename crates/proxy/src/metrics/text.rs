//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per
//! family, then its samples, one per line, with label values escaped. Families are written
//! one after the other, never interleaved.

use std::fmt::{Display, Write};

use super::{BUCKET_LABELS, HistogramSnapshot};

/// The `Content-Type` of the exposition.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// An exposition being written.
#[derive(Debug, Default)]
pub(crate) struct Exposition {
    out: String,
}

impl Exposition {
    /// Starts family `name`; its samples follow.
    pub(crate) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        for c in help.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                c => self.out.push(c),
            }
        }
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
    }

    /// One sample of the current family.
    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Display) {
        self.out.push_str(name);
        self.labels(labels, None);
        // Writing to a `String` cannot fail.
        let _ = writeln!(self.out, " {value}");
    }

    /// The `_bucket`, `_sum` and `_count` samples of one histogram of family `name`.
    pub(crate) fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &HistogramSnapshot) {
        let mut cumulative = 0;
        let bounds = BUCKET_LABELS.iter().copied().chain(["+Inf"]);
        for (le, n) in bounds.zip(h.counts) {
            cumulative += n;
            self.out.push_str(name);
            self.out.push_str("_bucket");
            self.labels(labels, Some(le));
            let _ = writeln!(self.out, " {cumulative}");
        }
        self.out.push_str(name);
        self.out.push_str("_sum");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.sum_seconds);
        self.out.push_str(name);
        self.out.push_str("_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {cumulative}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let all = labels.iter().copied().chain(le.map(|le| ("le", le)));
        for (i, (name, value)) in all.enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_label(value, &mut self.out);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The text written.
    pub(crate) fn finish(self) -> String {
        self.out
    }
}

/// A label value as the format writes it: backslash, double quote and line feed escaped.
pub(crate) fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::Histogram;
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label("a\\b\"c\nd é", &mut out);
        assert_eq!(out, r#"a\\b\"c\nd é"#);
    }

    #[test]
    fn a_small_exposition_exactly() {
        let mut e = Exposition::default();
        e.family(
            "zentinel_x_total",
            Kind::Counter,
            "Things.\nOn two lines \\ here.",
        );
        e.sample("zentinel_x_total", &[("route", "r"), ("code", "200")], 3);
        e.sample("zentinel_x_total", &[("route", "q\"")], 1);
        e.family("zentinel_up", Kind::Gauge, "Up.");
        e.sample("zentinel_up", &[], 1);
        let h = Histogram::default();
        h.observe(Duration::from_millis(2));
        h.observe(Duration::from_secs(90));
        e.family("zentinel_d_seconds", Kind::Histogram, "Durations.");
        e.histogram("zentinel_d_seconds", &[("route", "r")], &h.snapshot());
        let mut want = String::from(
            "# HELP zentinel_x_total Things.\\nOn two lines \\\\ here.\n\
             # TYPE zentinel_x_total counter\n\
             zentinel_x_total{route=\"r\",code=\"200\"} 3\n\
             zentinel_x_total{route=\"q\\\"\"} 1\n\
             # HELP zentinel_up Up.\n\
             # TYPE zentinel_up gauge\n\
             zentinel_up 1\n\
             # HELP zentinel_d_seconds Durations.\n\
             # TYPE zentinel_d_seconds histogram\n",
        );
        for (le, n) in BUCKET_LABELS
            .iter()
            .zip([0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1])
        {
            want.push_str(&format!(
                "zentinel_d_seconds_bucket{{route=\"r\",le=\"{le}\"}} {n}\n"
            ));
        }
        want.push_str(
            "zentinel_d_seconds_bucket{route=\"r\",le=\"+Inf\"} 2\n\
             zentinel_d_seconds_sum{route=\"r\"} 90.002\n\
             zentinel_d_seconds_count{route=\"r\"} 2\n",
        );
        assert_eq!(e.finish(), want);
    }
}
