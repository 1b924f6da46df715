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

    fn value(&mut self) -> ScanResult {
        self.skip_space();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(self.error("looking for beginning of value")),
        }
    }

    fn object(&mut self) -> ScanResult {
        self.pos += 1;
        self.skip_space();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
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
            self.value()?;
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> ScanResult {
        self.pos += 1;
        self.skip_space();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.skip_space();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("after array element")),
            }
        }
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
    }
}
