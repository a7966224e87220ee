//! nginx configuration syntax: directives with arguments, ended by `;` or a `{ … }` block,
//! quoted strings with escapes, `#` comments and `${var}` inside words, as nginx's own
//! `ngx_conf_read_token` reads them.

/// One argument of a directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Arg {
    pub(crate) text: String,
    pub(crate) quoted: bool,
}

/// One directive, with its block when it has one.
#[derive(Clone, Debug)]
pub(crate) struct Directive {
    pub(crate) name: String,
    pub(crate) args: Vec<Arg>,
    pub(crate) block: Option<Vec<Directive>>,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

impl Directive {
    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(|a| a.text.as_str())
    }

    /// The directive as written, without its block: `name arg1 arg2`.
    pub(crate) fn text(&self) -> String {
        let mut s = self.name.clone();
        for a in &self.args {
            s.push(' ');
            if a.quoted || a.text.is_empty() || a.text.contains(char::is_whitespace) {
                s.push('"');
                s.push_str(&a.text);
                s.push('"');
            } else {
                s.push_str(&a.text);
            }
        }
        s
    }
}

/// A syntax error with its position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) message: String,
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(Arg),
    Semi,
    Open,
    Close,
}

struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
    column: usize,
}

/// Deepest block nesting accepted; nginx configs are a few levels deep.
const MAX_DEPTH: usize = 64;

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn error(&self, message: impl Into<String>) -> SyntaxError {
        SyntaxError {
            line: self.line,
            column: self.column,
            message: message.into(),
        }
    }

    /// The next token with its start position, or `None` at the end.
    fn next(&mut self) -> Result<Option<(Tok, usize, usize)>, SyntaxError> {
        loop {
            match self.chars.peek() {
                None => return Ok(None),
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('#') => {
                    while self.chars.peek().is_some_and(|c| *c != '\n') {
                        self.bump();
                    }
                }
                Some(_) => break,
            }
        }
        let (line, column) = (self.line, self.column);
        let tok = match self.chars.peek().copied() {
            Some(';') => {
                self.bump();
                Tok::Semi
            }
            Some('{') => {
                self.bump();
                Tok::Open
            }
            Some('}') => {
                self.bump();
                Tok::Close
            }
            Some(q @ ('"' | '\'')) => {
                self.bump();
                Tok::Word(self.quoted(q)?)
            }
            _ => Tok::Word(self.word()),
        };
        Ok(Some((tok, line, column)))
    }

    fn quoted(&mut self, q: char) -> Result<Arg, SyntaxError> {
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error(format!("unterminated {q}-quoted string"))),
                Some('\\') => match self.bump() {
                    Some('n') => text.push('\n'),
                    Some('t') => text.push('\t'),
                    Some('r') => text.push('\r'),
                    Some(c) if c == q || c == '\\' => text.push(c),
                    Some(c) => {
                        text.push('\\');
                        text.push(c);
                    }
                    None => return Err(self.error("unterminated string")),
                },
                Some(c) if c == q => break,
                Some(c) => text.push(c),
            }
        }
        Ok(Arg { text, quoted: true })
    }

    fn word(&mut self) -> Arg {
        let mut text = String::new();
        while let Some(&c) = self.chars.peek() {
            if c.is_whitespace() || c == ';' || c == '}' {
                break;
            }
            if c == '{' {
                // `${name}` is part of a word; any other `{` opens a block.
                if text.ends_with('$') {
                    while let Some(c) = self.bump() {
                        text.push(c);
                        if c == '}' {
                            break;
                        }
                    }
                    continue;
                }
                break;
            }
            self.bump();
            if c == '\\' {
                if let Some(n) = self.bump() {
                    text.push('\\');
                    text.push(n);
                }
                continue;
            }
            text.push(c);
        }
        Arg {
            text,
            quoted: false,
        }
    }
}

/// Parses a whole configuration into its top-level directives.
#[expect(
    clippy::too_many_lines,
    reason = "one state machine over the tokens, with an error per case"
)]
pub(crate) fn parse(text: &str) -> Result<Vec<Directive>, SyntaxError> {
    let mut lx = Lexer {
        chars: text.chars().peekable(),
        line: 1,
        column: 1,
    };
    // A stack of open blocks: the directive that opened it (None for the top level).
    let mut stack: Vec<(Option<Directive>, Vec<Directive>)> = vec![(None, Vec::new())];
    let mut pending: Option<Directive> = None;
    while let Some((tok, line, column)) = lx.next()? {
        match tok {
            Tok::Word(arg) => match &mut pending {
                Some(d) => d.args.push(arg),
                None => {
                    pending = Some(Directive {
                        name: arg.text,
                        args: Vec::new(),
                        block: None,
                        line,
                        column,
                    })
                }
            },
            Tok::Semi => {
                let d = pending.take().ok_or_else(|| SyntaxError {
                    line,
                    column,
                    message: "unexpected \";\"".to_owned(),
                })?;
                if let Some(top) = stack.last_mut() {
                    top.1.push(d);
                }
            }
            Tok::Open => {
                let d = pending.take().ok_or_else(|| SyntaxError {
                    line,
                    column,
                    message: "unexpected \"{\": a block needs a directive name".to_owned(),
                })?;
                if stack.len() > MAX_DEPTH {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: format!("blocks nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                stack.push((Some(d), Vec::new()));
            }
            Tok::Close => {
                if let Some(d) = &pending {
                    return Err(SyntaxError {
                        line: d.line,
                        column: d.column,
                        message: format!("directive \"{}\" is not terminated by \";\"", d.name),
                    });
                }
                if stack.len() == 1 {
                    return Err(SyntaxError {
                        line,
                        column,
                        message: "unexpected \"}\"".to_owned(),
                    });
                }
                if let Some((Some(mut d), children)) = stack.pop() {
                    d.block = Some(children);
                    if let Some(top) = stack.last_mut() {
                        top.1.push(d);
                    }
                }
            }
        }
    }
    if let Some(d) = pending {
        return Err(SyntaxError {
            line: d.line,
            column: d.column,
            message: format!(
                "unexpected end of file: directive \"{}\" is not terminated by \";\"",
                d.name
            ),
        });
    }
    if stack.len() > 1 {
        let open = stack
            .last()
            .and_then(|(d, _)| d.as_ref())
            .map(|d| (d.line, d.column, d.name.clone()));
        let (line, column, name) = open.unwrap_or((lx.line, lx.column, String::new()));
        return Err(SyntaxError {
            line,
            column,
            message: format!("unexpected end of file: the \"{name}\" block is not closed"),
        });
    }
    Ok(stack.pop().map(|(_, c)| c).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn blocks_strings_comments() {
        let t = "http { # c\n  server { listen 80; add_header X \"a b;c\" always; }\n  location ~ \"^/x{2}$\" { }\n}\n";
        let d = parse(t).unwrap_or_default();
        assert_eq!(d.len(), 1);
        let http = d[0].block.clone().unwrap_or_default();
        assert_eq!(http[0].name, "server");
        let server = http[0].block.clone().unwrap_or_default();
        assert_eq!(server[1].arg(1), Some("a b;c"));
        assert_eq!((server[1].line, server[1].column), (2, 23));
        // `{` after a word starts a block in nginx too: such a regex needs quotes.
        assert_eq!(http[1].arg(1), Some("^/x{2}$"));
        assert!(parse("location ~ ^/x{2}$ { }").is_err());
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("server {\n listen 80\n}").err();
        assert_eq!(e.map(|e| (e.line, e.column)), Some((2, 2)));
        assert!(parse("}").is_err());
        assert!(parse("a \"x").is_err());
        assert!(parse("a {").is_err());
        assert!(parse("set $a ${b}c;").is_ok());
    }
}
