//! The template parser: a re-implementation of client-go's `parser.go` scanning rules, producing
//! the tree of [`crate::ast`] with source positions.

use crate::ast::{Filter, FilterOp, Literal, Segment, Span, Step, StepKind, Subscript, Template};
use crate::error::{ParseError, ParseErrorKind};

/// Sub-parses (union members, filter operands, quoted keys) cannot nest deeply in practice,
/// because their text is cut at the first `]` or `)`, but a bound keeps the recursion safe.
const MAX_SUBPARSE_DEPTH: usize = 16;

/// Parses a whole template.
pub(crate) fn parse(source: &str) -> Result<Template, ParseError> {
    Parser::new(source, 0, source.len(), 0).run()
}

struct Parser<'s> {
    input: &'s str,
    pos: usize,
    start: usize,
    width: usize,
    /// Offset added to positions to map them into the original template.
    base: isize,
    /// Length of the original template (positions are clamped to it).
    limit: usize,
    depth: usize,
    segments: Vec<Segment>,
}

/// End of input, client-go's `eof` rune.
const EOF: Option<char> = None;

impl<'s> Parser<'s> {
    fn new(input: &'s str, base: isize, limit: usize, depth: usize) -> Self {
        Parser {
            input,
            pos: 0,
            start: 0,
            width: 0,
            base,
            limit,
            depth,
            segments: Vec::new(),
        }
    }

    fn run(mut self) -> Result<Template, ParseError> {
        loop {
            // Text mode: everything up to the next `{`.
            match self.input[self.pos..].find('{') {
                Some(offset) => {
                    self.pos += offset;
                    if self.pos > self.start {
                        let span = self.span(self.start, self.pos);
                        let text = self.consume().to_string();
                        self.segments.push(Segment::Text { text, span });
                    }
                    let action_start = self.pos;
                    self.pos += 1;
                    self.consume();
                    let steps = self.parse_action()?;
                    let span = self.span(action_start, self.pos);
                    self.segments.push(Segment::Action { steps, span });
                }
                None => {
                    self.pos = self.input.len();
                    if self.pos > self.start {
                        let span = self.span(self.start, self.pos);
                        let text = self.consume().to_string();
                        self.segments.push(Segment::Text { text, span });
                    }
                    return Ok(Template {
                        segments: self.segments,
                    });
                }
            }
        }
    }

    // -- scanning primitives (client-go's next/backup/peek/consumeText) --------------------

    fn next(&mut self) -> Option<char> {
        match self.input[self.pos..].chars().next() {
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                Some(c)
            }
            None => {
                self.width = 0;
                EOF
            }
        }
    }

    fn backup(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&self) -> Option<char> {
        self.input[self.pos..].chars().next()
    }

    fn consume(&mut self) -> &'s str {
        let text = &self.input[self.start..self.pos];
        self.start = self.pos;
        text
    }

    fn rest(&self) -> &'s str {
        &self.input[self.pos..]
    }

    fn map(&self, offset: usize) -> usize {
        let mapped = offset as isize + self.base;
        mapped.clamp(0, self.limit as isize) as usize
    }

    fn span(&self, start: usize, end: usize) -> Span {
        Span::new(self.map(start), self.map(end))
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.map(self.pos.saturating_sub(self.width)))
    }

    fn error_at(&self, kind: ParseErrorKind, offset: usize) -> ParseError {
        ParseError::new(kind, self.map(offset))
    }

    // -- actions --------------------------------------------------------------------------

    /// Parses the inside of `{...}` (the `{` is consumed) up to and including the `}`.
    fn parse_action(&mut self) -> Result<Vec<Step>, ParseError> {
        let mut steps: Vec<Step> = Vec::new();
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                self.consume();
                return Ok(steps);
            }
            if rest.starts_with("[?(") {
                let step = self.parse_filter()?;
                steps.push(step);
                continue;
            }
            if rest.starts_with("..") {
                if matches!(
                    steps.last(),
                    Some(Step {
                        kind: StepKind::Recursive,
                        ..
                    })
                ) {
                    return Err(self.error_at(ParseErrorKind::MultipleRecursiveDescent, self.pos));
                }
                let begin = self.pos;
                self.pos += 2;
                self.consume();
                steps.push(Step {
                    kind: StepKind::Recursive,
                    span: self.span(begin, self.pos),
                });
                if self.peek().is_some_and(is_alphanumeric) {
                    let step = self.parse_field(self.pos)?;
                    steps.push(step);
                }
                continue;
            }
            let begin = self.pos;
            match self.next() {
                None | Some('\r' | '\n') => {
                    return Err(self.error_at(ParseErrorKind::UnclosedAction, begin));
                }
                Some(' ' | '@' | '$') => {
                    self.consume();
                }
                Some('[') => {
                    self.parse_array(begin, &mut steps)?;
                }
                Some(quote @ ('"' | '\'')) => {
                    let step = self.parse_quote(begin, quote)?;
                    steps.push(step);
                }
                Some('.') => {
                    let step = self.parse_field(begin)?;
                    steps.push(step);
                }
                Some(c) if c == '+' || c == '-' || is_digit(c) => {
                    self.backup();
                    let step = self.parse_number()?;
                    steps.push(step);
                }
                Some(c) if is_alphanumeric(c) => {
                    self.backup();
                    let step = self.parse_identifier();
                    steps.push(step);
                }
                Some(c) => {
                    return Err(self.error_at(ParseErrorKind::UnrecognizedCharacter(c), begin));
                }
            }
        }
    }

    /// `.name` (the `.` is consumed, or we are right after `..`).
    fn parse_field(&mut self, begin: usize) -> Result<Step, ParseError> {
        self.consume();
        loop {
            match self.next() {
                Some('\\') => {
                    self.next();
                }
                c if c.is_none_or(crate::ast::is_terminator) => {
                    self.backup();
                    break;
                }
                _ => {}
            }
        }
        let value = self.consume();
        let kind = if value == "*" {
            StepKind::Wildcard
        } else {
            StepKind::Field(value.replace('\\', ""))
        };
        Ok(Step {
            kind,
            span: self.span(begin, self.pos),
        })
    }

    fn parse_identifier(&mut self) -> Step {
        let begin = self.pos;
        loop {
            let c = self.next();
            if c.is_none_or(crate::ast::is_terminator) {
                self.backup();
                break;
            }
        }
        let value = self.consume();
        let kind = match value {
            "true" => StepKind::Literal(Literal::Bool(true)),
            "false" => StepKind::Literal(Literal::Bool(false)),
            other => StepKind::Identifier(other.to_string()),
        };
        Step {
            kind,
            span: self.span(begin, self.pos),
        }
    }

    fn parse_number(&mut self) -> Result<Step, ParseError> {
        let begin = self.pos;
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        loop {
            match self.next() {
                Some(c) if c == '.' || is_digit(c) => {}
                _ => {
                    self.backup();
                    break;
                }
            }
        }
        let value = self.consume();
        let span = self.span(begin, self.pos);
        if let Ok(i) = value.parse::<i64>() {
            return Ok(Step {
                kind: StepKind::Literal(Literal::Int(i)),
                span,
            });
        }
        // Only ASCII digits, signs and dots reach this point (or non-ASCII digits, which both
        // parsers reject), so Rust's float grammar agrees with Go's ParseFloat here.
        match value.parse::<f64>() {
            Ok(f)
                if value
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b".+-".contains(&b)) =>
            {
                Ok(Step {
                    kind: StepKind::Literal(Literal::Float(f)),
                    span,
                })
            }
            _ => Err(self.error_at(ParseErrorKind::CannotParseNumber(value.to_string()), begin)),
        }
    }

    /// `[...]`: union, quoted key or index/slice (the `[` is consumed).
    fn parse_array(&mut self, begin: usize, steps: &mut Vec<Step>) -> Result<(), ParseError> {
        loop {
            match self.next() {
                None | Some('\n') => {
                    return Err(self.error_at(ParseErrorKind::UnterminatedArray, begin));
                }
                Some(']') => break,
                Some(_) => {}
            }
        }
        let text = self.consume();
        let end = self.pos;
        let inner_start = begin + 1;
        let mut inner = &text[1..text.len() - 1];
        if inner == "*" {
            inner = ":";
        }

        // Union: members are re-parsed as `{[member]}`.
        if inner.contains(',') {
            let mut members = Vec::new();
            let mut offset = inner_start;
            for part in inner.split(',') {
                let trimmed = part.trim_matches(' ');
                let lead = part.len() - part.trim_start_matches(' ').len();
                let source = format!("[{trimmed}]");
                // `{` + `[` precede the member text in the synthetic source.
                let base = (offset + lead) as isize - 2;
                members.push(self.sub_action(&source, base)?);
                offset += part.len() + 1;
            }
            steps.push(Step {
                kind: StepKind::Union(members),
                span: self.span(begin, end),
            });
            return Ok(());
        }

        // Quoted key: `['a.b']` is re-parsed as `{.a.b}`.
        if inner.len() >= 2
            && inner.starts_with('\'')
            && inner.ends_with('\'')
            && !inner[1..inner.len() - 1].contains('\'')
        {
            let key = &inner[1..inner.len() - 1];
            let source = format!(".{key}");
            // `{` + `.` stand where `['` was.
            let base = inner_start as isize - 1;
            let sub = self.sub_action(&source, base)?;
            steps.extend(sub);
            return Ok(());
        }

        // Index or slice: `^(-?\d*)(:-?\d*)?(:-?\d*)?$`.
        let invalid = || ParseErrorKind::InvalidArrayIndex(inner.to_string());
        let (first, mut rest) = take_index(inner);
        let mut groups: [Option<&str>; 2] = [None, None];
        for group in &mut groups {
            if let Some(after) = rest.strip_prefix(':') {
                let (num, tail) = take_index(after);
                *group = Some(num);
                rest = tail;
            }
        }
        if !rest.is_empty() {
            return Err(self.error_at(invalid(), begin));
        }
        let number = |text: &str| -> Result<i64, ParseError> {
            text.parse::<i64>().map_err(|_| {
                self.error_at(ParseErrorKind::ArrayIndexNotNumber(text.to_string()), begin)
            })
        };
        let start = if first.is_empty() {
            None
        } else {
            Some(number(first)?)
        };
        let subscript = match groups {
            [None, _] => Subscript::Index(start),
            [Some(end_text), step_text] => {
                let end = if end_text.is_empty() {
                    None
                } else {
                    Some(number(end_text)?)
                };
                let step = match step_text {
                    Some(s) if !s.is_empty() => Some(number(s)?),
                    _ => None,
                };
                Subscript::Slice { start, end, step }
            }
        };
        steps.push(Step {
            kind: StepKind::Subscript(subscript),
            span: self.span(begin, end),
        });
        Ok(())
    }

    /// `[?(...)]` (nothing consumed yet).
    fn parse_filter(&mut self) -> Result<Step, ParseError> {
        let begin = self.pos;
        self.pos += 3;
        self.consume();
        let text_start = self.pos;
        let mut begun = false;
        let mut ended = false;
        let mut pair = '"';
        loop {
            match self.next() {
                None | Some('\n') => {
                    return Err(self.error_at(ParseErrorKind::UnterminatedFilter, begin));
                }
                Some(quote @ ('"' | '\'')) => {
                    if !begun {
                        begun = true;
                        pair = quote;
                        continue;
                    }
                    if self.input.as_bytes()[self.pos - 2] != b'\\' && quote == pair {
                        ended = true;
                    }
                }
                Some(')') => {
                    if begun == ended {
                        break;
                    }
                }
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err(self.error(ParseErrorKind::UnclosedFilter));
        }
        let text = self.consume();
        let text = &text[..text.len() - 2];
        let span = self.span(begin, self.pos);
        // `^([^!<>=]+)([!<>=]+)(.+?)$`
        let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
        let split = text.find(is_op).and_then(|left_len| {
            if left_len == 0 {
                return None;
            }
            let after = &text[left_len..];
            let mut op_len = after.find(|c: char| !is_op(c)).unwrap_or(after.len());
            if op_len == after.len() {
                // The right operand needs at least one character: give it the last one.
                if op_len < 2 {
                    return None;
                }
                op_len -= 1;
            }
            Some((left_len, op_len))
        });
        let filter = match split {
            None => Filter {
                left: self.sub_action(text, text_start as isize - 1)?,
                op: FilterOp::Exists,
                right: Vec::new(),
            },
            Some((left_len, op_len)) => {
                let left = &text[..left_len];
                let op = &text[left_len..left_len + op_len];
                let right = &text[left_len + op_len..];
                let right_start = text_start + left_len + op_len;
                Filter {
                    left: self.sub_action(left, text_start as isize - 1)?,
                    op: FilterOp::from_text(op),
                    right: self.sub_action(right, right_start as isize - 1)?,
                }
            }
        };
        Ok(Step {
            kind: StepKind::Filter(Box::new(filter)),
            span,
        })
    }

    /// A quoted string (the opening quote is consumed).
    fn parse_quote(&mut self, begin: usize, quote: char) -> Result<Step, ParseError> {
        loop {
            match self.next() {
                None | Some('\n') => {
                    return Err(self.error_at(ParseErrorKind::UnterminatedQuotedString, begin));
                }
                Some(c) if c == quote && self.input.as_bytes()[self.pos - 2] != b'\\' => break,
                Some(_) => {}
            }
        }
        let value = self.consume();
        let bytes = unquote_extend(value).ok_or_else(|| {
            self.error_at(
                ParseErrorKind::InvalidQuotedString(value.to_string()),
                begin,
            )
        })?;
        Ok(Step {
            kind: StepKind::Literal(Literal::String(bytes)),
            span: self.span(begin, self.pos),
        })
    }

    /// client-go's `parseAction`: parse `{text}` as a template and keep its first action.
    /// `base` maps offsets in `text` to the original template.
    fn sub_action(&self, text: &str, base: isize) -> Result<Vec<Step>, ParseError> {
        if self.depth >= MAX_SUBPARSE_DEPTH {
            return Err(ParseError::new(
                ParseErrorKind::TooDeep,
                self.map(self.pos.saturating_sub(1)),
            ));
        }
        let source = format!("{{{text}}}");
        let parser = Parser::new(&source, self.base + base, self.limit, self.depth + 1);
        let template = parser.run()?;
        match template.segments.into_iter().next() {
            Some(Segment::Action { steps, .. }) => Ok(steps),
            // ok: the synthetic source starts with `{`, so a successful parse always begins
            // with an action; stay total anyway.
            _ => Ok(Vec::new()),
        }
    }
}

/// `-?\d*` at the start of `s` (ASCII digits, like RE2's `\d`).
fn take_index(s: &str) -> (&str, &str) {
    let sign = usize::from(s.starts_with('-'));
    let digits = s[sign..].bytes().take_while(|b| b.is_ascii_digit()).count();
    s.split_at(sign + digits)
}

/// Go's `unicode.IsDigit`, approximated with Rust's tables outside ASCII.
fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || (!c.is_ascii() && c.is_numeric())
}

/// Go's `isAlphaNumeric`: `_`, letters and digits.
fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || is_digit(c)
}

/// client-go's `UnquoteExtend`: Go's `strconv.Unquote` rules for both `"..."` and `'...'`
/// strings. Returns the bytes, which need not be UTF-8 (`\xff`). `None` means "invalid syntax".
pub(crate) fn unquote_extend(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let n = bytes.len();
    if n < 2 {
        return None;
    }
    let quote = bytes[0];
    if quote != bytes[n - 1] || (quote != b'"' && quote != b'\'') {
        return None;
    }
    let body = &s[1..n - 1];
    if !body.contains('\\') && !body.as_bytes().contains(&quote) {
        return Some(body.as_bytes().to_vec());
    }
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while !rest.is_empty() {
        rest = unquote_char(rest, quote, &mut out)?;
    }
    Some(out)
}

/// Go's `strconv.UnquoteChar`: decodes one character or escape from `s`, appends its bytes to
/// `out` and returns the remainder.
fn unquote_char<'a>(s: &'a str, quote: u8, out: &mut Vec<u8>) -> Option<&'a str> {
    let first = *s.as_bytes().first()?;
    if first == quote {
        return None;
    }
    if first != b'\\' {
        let c = s.chars().next()?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        return Some(&s[c.len_utf8()..]);
    }
    let escape = *s.as_bytes().get(1)?;
    if !escape.is_ascii() {
        // Not an escape Go knows (and `s[2..]` would split a character).
        return None;
    }
    let mut rest = &s[2..];
    let simple = match escape {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b'f' => Some(0x0c),
        b'n' => Some(b'\n'),
        b'r' => Some(b'\r'),
        b't' => Some(b'\t'),
        b'v' => Some(0x0b),
        b'\\' => Some(b'\\'),
        b'\'' | b'"' if escape == quote => Some(escape),
        _ => None,
    };
    if let Some(b) = simple {
        out.push(b);
        return Some(rest);
    }
    match escape {
        b'x' | b'u' | b'U' => {
            let digits = match escape {
                b'x' => 2,
                b'u' => 4,
                _ => 8,
            };
            let hex = rest.get(..digits)?;
            let mut value: u32 = 0;
            for b in hex.bytes() {
                value = value.checked_mul(16)? | char::from(b).to_digit(16)?;
            }
            rest = &rest[digits..];
            if escape == b'x' {
                // A single byte, possibly not UTF-8.
                out.push(u8::try_from(value).ok()?);
            } else {
                let c = char::from_u32(value)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            Some(rest)
        }
        b'0'..=b'7' => {
            let mut value = u32::from(escape - b'0');
            let more = rest.get(..2)?;
            for b in more.bytes() {
                if !(b'0'..=b'7').contains(&b) {
                    return None;
                }
                value = (value << 3) | u32::from(b - b'0');
            }
            out.push(u8::try_from(value).ok()?);
            Some(&rest[2..])
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(name: &str) -> Step {
        Step::new(StepKind::Field(name.to_string()))
    }
    fn text(t: &str) -> Segment {
        Segment::Text {
            text: t.to_string(),
            span: Span::default(),
        }
    }
    fn action(steps: Vec<Step>) -> Segment {
        Segment::Action {
            steps,
            span: Span::default(),
        }
    }
    fn lit(s: &str) -> Step {
        Step::new(StepKind::Literal(Literal::String(s.as_bytes().to_vec())))
    }
    fn int(i: i64) -> Step {
        Step::new(StepKind::Literal(Literal::Int(i)))
    }
    fn ident(s: &str) -> Step {
        Step::new(StepKind::Identifier(s.to_string()))
    }
    fn sub(s: Subscript) -> Step {
        Step::new(StepKind::Subscript(s))
    }
    fn slice(start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Step {
        sub(Subscript::Slice { start, end, step })
    }
    fn filter(left: Vec<Step>, op: FilterOp, right: Vec<Step>) -> Step {
        Step::new(StepKind::Filter(Box::new(Filter { left, op, right })))
    }
    fn os_image_filter(value: &str) -> Vec<Segment> {
        vec![action(vec![filter(
            vec![field("status"), field("nodeInfo"), field("osImage")],
            FilterOp::Eq,
            vec![lit(value)],
        )])]
    }

    fn check(template: &str, expected: Vec<Segment>) {
        let parsed = parse(template).unwrap_or_else(|e| panic!("{template}: {e}"));
        assert_eq!(parsed.segments, expected, "template {template}");
        // Every tree the parser builds prints back to an equivalent template.
        let printed = parsed.to_string();
        let reparsed = parse(&printed).unwrap_or_else(|e| panic!("{printed}: {e}"));
        assert_eq!(reparsed, parsed, "round trip of {template} via {printed}");
    }

    // client-go parser_test.go, TestParser.
    #[test]
    fn client_go_parser_cases() {
        check("hello jsonpath", vec![text("hello jsonpath")]);
        check(
            "hello {.jsonpath}",
            vec![text("hello "), action(vec![field("jsonpath")])],
        );
        check(
            "hello {['jsonpath']}",
            vec![text("hello "), action(vec![field("jsonpath")])],
        );
        check(r#"{"{"}"#, vec![action(vec![lit("{")])]);
        check("{[1:3]}", vec![action(vec![slice(Some(1), Some(3), None)])]);
        check(
            "{.book[*].author}",
            vec![action(vec![
                field("book"),
                slice(None, None, None),
                field("author"),
            ])],
        );
        check(
            "{.bicycle.*}",
            vec![action(vec![
                field("bicycle"),
                Step::new(StepKind::Wildcard),
            ])],
        );
        check(
            "{[?(@.price<3)]}",
            vec![action(vec![filter(
                vec![field("price")],
                FilterOp::Lt,
                vec![int(3)],
            )])],
        );
        check("{..}", vec![action(vec![Step::new(StepKind::Recursive)])]);
        check(
            "{..price}",
            vec![action(vec![Step::new(StepKind::Recursive), field("price")])],
        );
        check(
            "{['book.price']}",
            vec![action(vec![field("book"), field("price")])],
        );
        check(
            "{['bicycle.price', 3, 'book.price']}",
            vec![action(vec![Step::new(StepKind::Union(vec![
                vec![field("bicycle"), field("price")],
                vec![sub(Subscript::Index(Some(3)))],
                vec![field("book"), field("price")],
            ]))])],
        );
        check(
            "{range .items}{.name},{end}",
            vec![
                action(vec![ident("range"), field("items")]),
                action(vec![field("name")]),
                text(","),
                action(vec![ident("end")]),
            ],
        );
        assert!(parse(r"{\\\}").is_err(), "malformed input");
        check(
            r#"{[?(@.status.nodeInfo.osImage == "()")]}"#,
            os_image_filter("()"),
        );
        check(
            r#"{[?(@.status.nodeInfo.osImage == "(\"\")")]}"#,
            os_image_filter(r#"("")"#),
        );
        check(
            r#"{[?(@.test == "())(")]}"#,
            vec![action(vec![filter(
                vec![field("test")],
                FilterOp::Eq,
                vec![lit("())(")],
            )])],
        );
        check(
            "{[?(@.status.nodeInfo.osImage == 'Linux')]}",
            os_image_filter("Linux"),
        );
        check(
            r#"{[?(@.status.nodeInfo.osImage == "{[()]}")]}"#,
            os_image_filter("{[()]}"),
        );
        check(
            r#"{[?(@.status.nodeInfo.osImage == "''")]}"#,
            os_image_filter("''"),
        );
        check(
            r#"{[?(@.status.nodeInfo.osImage == '""')]}"#,
            os_image_filter(r#""""#),
        );
        check(
            r"{[?(@.status.nodeInfo.osImage == '\\\'')]}",
            os_image_filter(r"\'"),
        );
        check("{[-5:]}", vec![action(vec![slice(Some(-5), None, None)])]);
        check(
            "{[-1]}",
            vec![action(vec![sub(Subscript::Index(Some(-1)))])],
        );
        check(
            "{[1:-1]}",
            vec![action(vec![slice(Some(1), Some(-1), None)])],
        );
    }

    // client-go parser_test.go, TestFailParser.
    #[test]
    fn client_go_parser_failures() {
        let cases = [
            ("{.hello", "unclosed action"),
            ("{*}", "unrecognized character in action: U+002A '*'"),
            ("{+12.3.0}", "cannot parse number +12.3.0"),
            ("{[1}", "unterminated array"),
            ("{[?(.price]}", "unterminated filter"),
            ("{........}", "invalid multiple recursive descent"),
        ];
        for (template, message) in cases {
            let err = parse(template).expect_err(template);
            assert_eq!(err.to_string(), message, "template {template}");
        }
    }

    #[test]
    fn more_parse_errors_use_client_go_wording() {
        let cases = [
            ("{\"abc", "unterminated quoted string"),
            (r#"{"\q"}"#, r#"unquote string "\q" error invalid syntax"#),
            (r#"{'\"'}"#, r#"unquote string '\"' error invalid syntax"#),
            ("{[a]}", "invalid array index a"),
            ("{[-]}", "array index - is not a number"),
            ("{[1:-]}", "array index - is not a number"),
            (
                "{[99999999999999999999]}",
                "array index 99999999999999999999 is not a number",
            ),
            ("{[?(@.a)x]}", "unclosed array expect ]"),
            ("{.a\n}", "unclosed action"),
            ("{\t}", "unrecognized character in action: U+0009"),
            ("{..*}", "unrecognized character in action: U+002A '*'"),
            ("{-}", "cannot parse number -"),
            (
                "{[?(@.a==)]}",
                "unrecognized character in action: U+003D '='",
            ),
            ("{[1,a]}", "invalid array index a"),
        ];
        for (template, message) in cases {
            let err = parse(template).expect_err(template);
            assert_eq!(err.to_string(), message, "template {template:?}");
        }
    }

    #[test]
    fn error_positions_point_into_the_template() {
        let err = parse("ab {.x} {*}").expect_err("bad");
        assert_eq!(err.position(), 9);
        let err = parse("{[0, ?(@.a]}").expect_err("bad");
        assert_eq!(err.to_string(), "unterminated filter");
        assert!(err.position() <= 12);
    }

    #[test]
    fn spans_cover_the_source() {
        let t = parse("hi {.a.b[0]} x").expect("parse");
        assert_eq!(t.segments[0].span(), Span::new(0, 3));
        assert_eq!(t.segments[1].span(), Span::new(3, 12));
        let Segment::Action { steps, .. } = &t.segments[1] else {
            panic!("action expected")
        };
        assert_eq!(steps[0].span, Span::new(4, 6));
        assert_eq!(steps[1].span, Span::new(6, 8));
        assert_eq!(steps[2].span, Span::new(8, 11));
        assert_eq!(t.segments[2].span(), Span::new(12, 14));
        // A quoted key maps back to the bracket's text.
        let t = parse("{['a.b']}").expect("parse");
        let Segment::Action { steps, .. } = &t.segments[0] else {
            panic!("action expected")
        };
        assert_eq!(steps[1].span.end, 6);
    }

    #[test]
    fn quirks_of_client_go_are_kept() {
        // `[]` is an index with an unknown start, which client-go evaluates as `[0]`.
        check("{[]}", vec![action(vec![sub(Subscript::Index(None))])]);
        // `[*]` and `[:]` are the same full slice; `[a:b:]` has no step.
        check("{[:]}", vec![action(vec![slice(None, None, None)])]);
        check(
            "{[1:2:]}",
            vec![action(vec![slice(Some(1), Some(2), None)])],
        );
        check("{[::2]}", vec![action(vec![slice(None, None, Some(2))])]);
        // Escaped terminators in field names.
        check(
            r"{.metadata.labels.kubernetes\.io/hostname}",
            vec![action(vec![
                field("metadata"),
                field("labels"),
                field("kubernetes.io/hostname"),
            ])],
        );
        // A space inside a quoted key splits it, as in client-go.
        check("{['a b']}", vec![action(vec![field("a"), ident("b")])]);
        // Numbers: integers, floats, overflow to float.
        check(
            "{1 -2 +3 1.5 99999999999999999999}",
            vec![action(vec![
                int(1),
                int(-2),
                int(3),
                Step::new(StepKind::Literal(Literal::Float(1.5))),
                Step::new(StepKind::Literal(Literal::Float(1e20))),
            ])],
        );
        check(
            "{true false}",
            vec![action(vec![
                Step::new(StepKind::Literal(Literal::Bool(true))),
                Step::new(StepKind::Literal(Literal::Bool(false))),
            ])],
        );
        // `...name` is recursive descent then a field.
        check(
            "{...Price}",
            vec![action(vec![Step::new(StepKind::Recursive), field("Price")])],
        );
        // Unknown operators parse; they fail at execution time.
        check(
            "{[?(@.a<>1)]}",
            vec![action(vec![filter(
                vec![field("a")],
                FilterOp::Other("<>".into()),
                vec![int(1)],
            )])],
        );
        // Text after a stray `}` in a re-parsed fragment is dropped, like client-go.
        check("{['a}b']}", vec![action(vec![field("a")])]);
        // An empty template has no segments; `}` outside an action is text.
        check("", vec![]);
        check("a}b", vec![text("a}b")]);
    }

    #[test]
    fn go_escapes_in_string_literals() {
        let t = parse(r#"{"\t\n\\\x41\u00e9\101\xff"}{'it\'s'}"#).expect("parse");
        let Segment::Action { steps, .. } = &t.segments[0] else {
            panic!("action expected")
        };
        assert_eq!(
            steps[0].kind,
            StepKind::Literal(Literal::String(b"\t\n\\A\xc3\xa9A\xff".to_vec()))
        );
        let Segment::Action { steps, .. } = &t.segments[1] else {
            panic!("action expected")
        };
        assert_eq!(
            steps[0].kind,
            StepKind::Literal(Literal::String(b"it's".to_vec()))
        );
        let reparsed = parse(&t.to_string()).expect("reparse");
        assert_eq!(reparsed, t);
        assert!(unquote_extend(r#""\400""#).is_none());
        // A backslash before a multi-byte character (found by proptest) is an error.
        assert!(unquote_extend("\"\\ః\"").is_none());
        assert!(parse("{\"\\ః\"}").is_err());
        assert!(unquote_extend(r#""\ud800""#).is_none());
        assert!(unquote_extend("\"").is_none());
        assert!(unquote_extend("'a\"").is_none());
    }
}
