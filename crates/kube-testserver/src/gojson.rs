//! The syntax-error messages of Go's `encoding/json`, which the API server passes through
//! (`invalid character 'n' looking for beginning of object key string`).

/// Go's `quoteChar`.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => "'\\''".to_string(),
        b'"' => "'\"'".to_string(),
        b'\n' => "'\\n'".to_string(),
        b'\t' => "'\\t'".to_string(),
        b'\r' => "'\\r'".to_string(),
        0x20..=0x7e => format!("'{}'", c as char),
        _ => format!("'\\x{c:02x}'"),
    }
}

/// Go's `maxNestingDepth`: deeper input is "exceeded max depth".
pub const MAX_DEPTH: usize = 10_000;

enum Container {
    Array,
    Object,
}

fn push(open: &mut Vec<Container>, container: Container) -> ScanResult {
    open.push(container);
    if open.len() > MAX_DEPTH {
        return Err("exceeded max depth".to_string());
    }
    Ok(())
}

struct Scanner<'a> {
    data: &'a [u8],
    pos: usize,
}

type ScanResult = Result<(), String>;

impl Scanner<'_> {
    fn skip_space(&mut self) {
        while self
            .data
            .get(self.pos)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn error(&self, context: &str) -> String {
        match self.peek() {
            Some(c) => format!("invalid character {} {context}", quote_char(c)),
            None => "unexpected end of JSON input".to_string(),
        }
    }

    /// One JSON value, containers included, without recursion: the open containers are a
    /// stack, bounded like Go's scanner (`maxNestingDepth`), so no input can exhaust the
    /// thread's stack.
    fn value(&mut self) -> ScanResult {
        let mut open: Vec<Container> = Vec::new();
        'value: loop {
            self.skip_space();
            match self.peek() {
                Some(b'{') => {
                    self.pos += 1;
                    push(&mut open, Container::Object)?;
                    self.skip_space();
                    if self.peek() == Some(b'}') {
                        self.pos += 1;
                        open.pop();
                    } else {
                        self.object_key()?;
                        continue 'value;
                    }
                }
                Some(b'[') => {
                    self.pos += 1;
                    push(&mut open, Container::Array)?;
                    self.skip_space();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                        open.pop();
                    } else {
                        continue 'value;
                    }
                }
                Some(b'"') => self.string()?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                _ => return Err(self.error("looking for beginning of value")),
            }
            // A value is complete: close what it completes, or go on to the next element.
            loop {
                let Some(container) = open.last() else {
                    return Ok(());
                };
                self.skip_space();
                match (container, self.peek()) {
                    (Container::Array, Some(b',')) => {
                        self.pos += 1;
                        continue 'value;
                    }
                    (Container::Object, Some(b',')) => {
                        self.pos += 1;
                        self.object_key()?;
                        continue 'value;
                    }
                    (Container::Array, Some(b']')) | (Container::Object, Some(b'}')) => {
                        self.pos += 1;
                        open.pop();
                    }
                    (Container::Array, _) => return Err(self.error("after array element")),
                    (Container::Object, _) => {
                        return Err(self.error("after object key:value pair"));
                    }
                }
            }
        }
    }

    /// An object key and its colon.
    fn object_key(&mut self) -> ScanResult {
        self.skip_space();
        if self.peek() != Some(b'"') {
            return Err(self.error("looking for beginning of object key string"));
        }
        self.string()?;
        self.skip_space();
        if self.peek() != Some(b':') {
            return Err(self.error("after object key"));
        }
        self.pos += 1;
        Ok(())
    }

    fn string(&mut self) -> ScanResult {
        self.pos += 1;
        loop {
            match self.peek() {
                None => return Err(self.error("")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            self.pos += 1;
                            for _ in 0..4 {
                                if !self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    return Err(self.error("in \\u hexadecimal character escape"));
                                }
                                self.pos += 1;
                            }
                        }
                        _ => return Err(self.error("in string escape code")),
                    }
                }
                Some(c) if c < 0x20 => return Err(self.error("in string literal")),
                Some(_) => self.pos += 1,
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> ScanResult {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return Err(self.error("in numeric literal"));
            }
        }
        if self.peek() == Some(b'0') {
            self.pos += 1;
        } else {
            self.digits();
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.error("after decimal point in numeric literal"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.error("in exponent of numeric literal"));
            }
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> ScanResult {
        let name = String::from_utf8_lossy(word).to_string();
        self.pos += 1;
        for &expected in &word[1..] {
            if self.peek() != Some(expected) {
                return Err(self.error(&format!(
                    "in literal {name} (expecting {})",
                    quote_char(expected)
                )));
            }
            self.pos += 1;
        }
        Ok(())
    }
}

/// The message Go's `json.Unmarshal` gives for a syntax error in `data`, or `None` when the
/// syntax is fine.
pub fn syntax_error(data: &[u8]) -> Option<String> {
    let mut scanner = Scanner { data, pos: 0 };
    if let Err(message) = scanner.value() {
        return Some(message);
    }
    scanner.skip_space();
    if scanner.peek().is_some() {
        return Some(scanner.error("after top-level value"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_go() {
        assert_eq!(
            syntax_error(b"{not json").unwrap(),
            "invalid character 'n' looking for beginning of object key string"
        );
        assert_eq!(
            syntax_error(&[0x81, 0x02]).unwrap(),
            "invalid character '\\x81' looking for beginning of value"
        );
        assert_eq!(
            syntax_error(b"{\"a\":").unwrap(),
            "unexpected end of JSON input"
        );
        assert_eq!(
            syntax_error(b"{\"a\" 1}").unwrap(),
            "invalid character '1' after object key"
        );
        assert_eq!(
            syntax_error(b"[1 2]").unwrap(),
            "invalid character '2' after array element"
        );
        assert_eq!(
            syntax_error(b"tru").unwrap(),
            "unexpected end of JSON input"
        );
        assert_eq!(
            syntax_error(b"{} x").unwrap(),
            "invalid character 'x' after top-level value"
        );
        assert!(syntax_error(br#"{"a": [1, -2.5e3, true, null, "x\u00e9"]}"#).is_none());
        assert_eq!(
            syntax_error(b"{\"a\": 1,}").unwrap(),
            "invalid character '}' looking for beginning of object key string"
        );
        assert_eq!(
            syntax_error(b"[1,]").unwrap(),
            "invalid character ']' looking for beginning of value"
        );
        assert!(syntax_error(b"[[], {}, [{}], {\"a\": [[]]}]").is_none());
    }

    #[test]
    fn depth_is_bounded_like_go() {
        // Go 1.27's json.Unmarshal: 10,000 levels are fine, one more is "exceeded max depth".
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(syntax_error(nested(MAX_DEPTH).as_bytes()).is_none());
        assert_eq!(
            syntax_error(nested(MAX_DEPTH + 1).as_bytes()).unwrap(),
            "exceeded max depth"
        );
        // Far deeper than any stack: answered, not crashed.
        assert_eq!(
            syntax_error("[".repeat(1_000_000).as_bytes()).unwrap(),
            "exceeded max depth"
        );
        let objects = format!(
            "{}1{}",
            "{\"a\":".repeat(MAX_DEPTH + 1),
            "}".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(
            syntax_error(objects.as_bytes()).unwrap(),
            "exceeded max depth"
        );
        // A syntax error before the limit is reported first.
        assert_eq!(
            syntax_error(b"[[[x").unwrap(),
            "invalid character 'x' looking for beginning of value"
        );
    }
}
