//! Go's formatting of values inside apimachinery's error messages, so our messages read
//! byte for byte like the API server's.

use std::fmt::Write as _;

/// `strconv.Quote` (`%q`): a double-quoted string with Go's escapes.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            // Not printable for Go (other controls, separators other than the space).
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) < 0x10000 {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `json.Marshal` of a string slice as Go writes it (`<`, `>`, `&`, U+2028 and U+2029
/// escaped; `null` is never produced here: an empty list is `[]`).
pub(crate) fn json_string_list(values: &[String]) -> String {
    let mut out = String::from("[");
    for (i, value) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in value.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push(']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(quote("a b"), r#""a b""#);
        assert_eq!(quote("a\"\\\n\u{1}\u{7f}"), r#""a\"\\\n\x01\x7f""#);
        assert_eq!(quote("\u{a0}é"), r#""\u00a0é""#);
        assert_eq!(
            json_string_list(&["bar".into(), "<&>".into()]),
            r#"["bar","\u003c\u0026\u003e"]"#
        );
        assert_eq!(json_string_list(&[]), "[]");
    }
}
