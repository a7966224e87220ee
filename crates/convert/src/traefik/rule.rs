//! Traefik router rules (`Host(…) && PathPrefix(…) || …`) → one set of matches per
//! alternative.

use crate::model::PathMatch;
use crate::rules;

/// The matches of one alternative.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Match {
    pub(crate) hosts: Vec<String>,
    pub(crate) path: Option<PathMatch>,
    pub(crate) methods: Vec<String>,
    pub(crate) headers: Vec<(String, Option<String>)>,
    pub(crate) query: Vec<(String, Option<String>)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Open,
    Close,
    Comma,
    And,
    Or,
    Not,
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '(' | ')' | ',' | '!' => {
                it.next();
                out.push(match c {
                    '(' => Tok::Open,
                    ')' => Tok::Close,
                    ',' => Tok::Comma,
                    _ => Tok::Not,
                });
            }
            '&' | '|' => {
                it.next();
                if it.next() != Some(c) {
                    return Err(format!("expected `{c}{c}`"));
                }
                out.push(if c == '&' { Tok::And } else { Tok::Or });
            }
            '`' | '"' => {
                it.next();
                let mut v = String::new();
                loop {
                    match it.next() {
                        None => return Err("an unterminated string".to_owned()),
                        Some('\\') if c == '"' => v.extend(it.next()),
                        Some(x) if x == c => break,
                        Some(x) => v.push(x),
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_alphabetic() => {
                let mut v = String::new();
                while let Some(&x) = it.peek() {
                    if !x.is_ascii_alphanumeric() {
                        break;
                    }
                    v.push(x);
                    it.next();
                }
                out.push(Tok::Ident(v));
            }
            c => return Err(format!("unexpected `{c}`")),
        }
    }
    Ok(out)
}

/// A matcher call.
type Call = (String, Vec<String>);

struct P {
    toks: Vec<Tok>,
    i: usize,
    depth: usize,
}

impl P {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    /// An OR of ANDs of calls.
    fn or(&mut self) -> Result<Vec<Vec<Call>>, String> {
        let mut alts = self.and()?;
        while self.peek() == Some(&Tok::Or) {
            self.next();
            alts.extend(self.and()?);
        }
        Ok(alts)
    }

    fn and(&mut self) -> Result<Vec<Vec<Call>>, String> {
        let mut acc = self.unary()?;
        while self.peek() == Some(&Tok::And) {
            self.next();
            let rhs = self.unary()?;
            let mut out = Vec::new();
            for a in &acc {
                for b in &rhs {
                    out.push(a.iter().chain(b).cloned().collect());
                }
            }
            if out.len() > 64 {
                return Err("the rule expands to more than 64 routes".to_owned());
            }
            acc = out;
        }
        Ok(acc)
    }

    fn unary(&mut self) -> Result<Vec<Vec<Call>>, String> {
        self.depth += 1;
        if self.depth > 32 {
            return Err("the rule is nested too deeply".to_owned());
        }
        let r = match self.next() {
            Some(Tok::Not) => {
                Err("negation (`!`) has no Zentinel equivalent: routes match positively".to_owned())
            }
            Some(Tok::Open) => {
                let inner = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(inner),
                    _ => Err("a `(` is not closed".to_owned()),
                }
            }
            Some(Tok::Ident(name)) => {
                if self.next() != Some(Tok::Open) {
                    return Err(format!("`{name}` needs arguments in parentheses"));
                }
                let mut args = Vec::new();
                loop {
                    match self.next() {
                        Some(Tok::Str(s)) => args.push(s),
                        Some(Tok::Close) if args.is_empty() => break,
                        _ => return Err(format!("`{name}(…)` takes quoted strings")),
                    }
                    match self.next() {
                        Some(Tok::Comma) => continue,
                        Some(Tok::Close) => break,
                        _ => return Err(format!("`{name}(…)` is not closed")),
                    }
                }
                Ok(vec![vec![(name, args)]])
            }
            _ => Err("expected a matcher such as Host(`example.com`)".to_owned()),
        };
        self.depth -= 1;
        r
    }
}

/// Parses a rule into alternatives, or why it cannot be converted.
pub(crate) fn parse(rule: &str) -> Result<Vec<Match>, String> {
    let mut p = P {
        toks: lex(rule)?,
        i: 0,
        depth: 0,
    };
    let alts = p.or()?;
    if p.i < p.toks.len() {
        return Err("unexpected text after the rule".to_owned());
    }
    alts.iter().map(|calls| conjunction(calls)).collect()
}

fn conjunction(calls: &[Call]) -> Result<Match, String> {
    let mut m = Match::default();
    for (name, args) in calls {
        apply(&mut m, name, args)?;
    }
    Ok(m)
}

fn set_path(m: &mut Match, p: PathMatch) -> Result<(), String> {
    if m.path.is_some() {
        return Err("two path matchers in one alternative cannot be combined".to_owned());
    }
    m.path = Some(p);
    Ok(())
}

fn apply(m: &mut Match, name: &str, args: &[String]) -> Result<(), String> {
    let one = || match args {
        [a] => Ok(a.clone()),
        _ => Err(format!("`{name}` takes one argument here")),
    };
    match name {
        "Host" => {
            if !m.hosts.is_empty() {
                return Err("two Host matchers in one alternative".to_owned());
            }
            for h in args {
                let p = rules::host_pattern(h)
                    .filter(|p| !p.starts_with("*."))
                    .ok_or_else(|| format!("\"{h}\" is not a host name"))?;
                m.hosts.push(p);
            }
        }
        "Path" | "PathPrefix" => {
            let p = one()?;
            if p.contains('{') {
                return Err(format!("`{name}` with a `{{…}}` pattern is not supported"));
            }
            if !rules::path(&p) {
                return Err(format!("the path \"{p}\" does not start with '/'"));
            }
            set_path(
                m,
                if name == "Path" {
                    PathMatch::Exact(p)
                } else {
                    PathMatch::Prefix(p)
                },
            )?;
        }
        "PathRegexp" => {
            let re = one()?;
            rules::regex(&re).map_err(|e| {
                format!("the regular expression is not valid in Rust's syntax: {e}")
            })?;
            set_path(m, PathMatch::Regex(re))?;
        }
        "Method" => {
            for a in args {
                m.methods
                    .push(rules::method(a).ok_or_else(|| format!("\"{a}\" is not a method"))?);
            }
        }
        "Header" | "Headers" => match args {
            [k, v] => {
                let k = rules::header_name(k)?;
                rules::header_value(v)?;
                m.headers.push((k, Some(v.clone())));
            }
            _ => return Err(format!("`{name}` takes a name and a value")),
        },
        "Query" => {
            let (k, v) = match args {
                [kv] => match kv.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                    None => (kv.clone(), None),
                },
                [k, v] => (k.clone(), Some(v.clone())),
                _ => return Err("`Query` takes `key=value`".to_owned()),
            };
            if k.is_empty() {
                return Err("an empty query parameter name".to_owned());
            }
            m.query.push((k, v));
        }
        "ClientIP" => return Err(
            "client-address matching belongs in an agent (the denylist agent matches client IPs)"
                .to_owned(),
        ),
        other => return Err(format!("the matcher `{other}` has no Zentinel equivalent")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        let m = parse("Host(`a.com`) && PathPrefix(`/api`)").unwrap_or_default();
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].hosts, vec!["a.com".to_owned()]);
        let m = parse("(Host(`a.com`) || Host(`b.com`)) && Method(`GET`)").unwrap_or_default();
        assert_eq!(m.len(), 2);
        assert!(parse("!Host(`a`)").is_err());
        assert!(parse("Host(`a`) &&").is_err());
        assert!(parse("HostRegexp(`.*`)").is_err());
        assert_eq!(
            parse("Query(`a=1`)").unwrap_or_default()[0].query,
            vec![("a".to_owned(), Some("1".to_owned()))]
        );
    }
}
