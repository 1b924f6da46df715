//! Go-compatible formatting: `fmt.Print`'s `%v` for scalars, `encoding/json` for maps and
//! arrays (sorted keys, HTML-safe escapes, Go's float layout) and `json.MarshalIndent`.

use crate::value::sealed::{Sealed, View};

/// Shortest round-trip digits of a finite, non-negative float, and the position of the decimal
/// point relative to them (`digits × 10^(point - len)`).
fn shortest_digits(abs: f64) -> (Vec<u8>, i32) {
    // `{:e}` prints the shortest representation that round-trips, like Go's strconv.
    let text = format!("{abs:e}");
    let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exponent + 1)
}

/// `%e` with the shortest precision: `1.234567e+06`.
fn write_exponent_form(out: &mut Vec<u8>, digits: &[u8], point: i32) {
    out.push(digits[0]);
    if digits.len() > 1 {
        out.push(b'.');
        out.extend_from_slice(&digits[1..]);
    }
    let exp = point - 1;
    out.push(b'e');
    out.push(if exp < 0 { b'-' } else { b'+' });
    let magnitude = exp.unsigned_abs();
    if magnitude < 10 {
        out.push(b'0');
    }
    out.extend_from_slice(magnitude.to_string().as_bytes());
}

/// `%f` with the shortest precision: `0.000123`, `1234.5`.
fn write_fixed_form(out: &mut Vec<u8>, digits: &[u8], point: i32) {
    let len = digits.len() as i32;
    if point <= 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', point.unsigned_abs() as usize));
        out.extend_from_slice(digits);
    } else if point >= len {
        out.extend_from_slice(digits);
        out.extend(std::iter::repeat_n(b'0', (point - len) as usize));
    } else {
        let (int, frac) = digits.split_at(point as usize);
        out.extend_from_slice(int);
        out.push(b'.');
        out.extend_from_slice(frac);
    }
}

/// Go's `fmt.Print(float64)` (`%v`, i.e. `%g` with the shortest precision).
pub(crate) fn go_float_v(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let (digits, point) = shortest_digits(f.abs());
    let exp = point - 1;
    if f != 0.0 && !(-4..6).contains(&exp) {
        write_exponent_form(out, &digits, point);
    } else {
        write_fixed_form(out, &digits, point);
    }
}

/// Go's `encoding/json` layout of a float64: fixed notation for magnitudes in [1e-6, 1e21),
/// else exponent notation with `e-7` rather than `e-07`.
pub(crate) fn go_float_json(out: &mut Vec<u8>, f: f64) {
    if !f.is_finite() {
        // encoding/json refuses these; they cannot come from parsed JSON.
        out.extend_from_slice(b"null");
        return;
    }
    if f.is_sign_negative() {
        out.push(b'-');
    }
    let abs = f.abs();
    let (digits, point) = shortest_digits(abs);
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let start = out.len();
        write_exponent_form(out, &digits, point);
        // Go trims the leading zero of a negative two-digit exponent: e-07 -> e-7.
        let n = out.len();
        if n - start >= 4 && &out[n - 4..n - 1] == b"e-0" {
            out.remove(n - 2);
        }
    } else {
        write_fixed_form(out, &digits, point);
    }
}

/// Go's `encoding/json` string encoding, HTML-safe (`<`, `>`, `&` escaped), with invalid UTF-8
/// replaced by U+FFFD.
pub(crate) fn json_string(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for chunk in bytes.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        let mut i = 0;
        while i < valid.len() {
            let b = valid[i];
            let escape: Option<&[u8]> = match b {
                b'"' => Some(b"\\\""),
                b'\\' => Some(b"\\\\"),
                b'\n' => Some(b"\\n"),
                b'\r' => Some(b"\\r"),
                b'\t' => Some(b"\\t"),
                0x08 => Some(b"\\b"),
                0x0c => Some(b"\\f"),
                _ => None,
            };
            let hex_escape = b < 0x20 || b == b'<' || b == b'>' || b == b'&';
            // U+2028 and U+2029 are E2 80 A8 / E2 80 A9.
            let line_sep = b == 0xe2
                && valid.get(i + 1) == Some(&0x80)
                && matches!(valid.get(i + 2), Some(0xa8 | 0xa9));
            if escape.is_none() && !hex_escape && !line_sep {
                i += 1;
                continue;
            }
            out.extend_from_slice(&valid[start..i]);
            if let Some(e) = escape {
                out.extend_from_slice(e);
                i += 1;
            } else if line_sep {
                out.extend_from_slice(if valid[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
            } else {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
                i += 1;
            }
            start = i;
        }
        out.extend_from_slice(&valid[start..]);
        if !chunk.invalid().is_empty() {
            out.extend_from_slice(b"\\ufffd");
        }
    }
    out.push(b'"');
}

pub(crate) fn write_int(out: &mut Vec<u8>, i: i64) {
    let mut buf = itoa_buf(i);
    out.extend_from_slice(buf.as_bytes_mut());
}

/// A tiny integer formatter that avoids `format!` allocations.
struct IntBuf {
    bytes: [u8; 20],
    start: usize,
}

impl IntBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.bytes[self.start..]
    }
}

fn itoa_buf(i: i64) -> IntBuf {
    let mut bytes = [0u8; 20];
    let mut pos = bytes.len();
    let mut n = i.unsigned_abs();
    loop {
        pos -= 1;
        bytes[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if i < 0 {
        pos -= 1;
        bytes[pos] = b'-';
    }
    IntBuf { bytes, start: pos }
}

/// Entries of an object sorted by key, as `encoding/json` and `fmt` print maps.
pub(crate) fn sorted_entries<V: Sealed>(object: &V) -> Vec<(&str, &V)> {
    let mut entries = Vec::with_capacity(object.entry_count());
    object.for_each_entry(&mut |k, v| entries.push((k, v)));
    if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

/// Compact JSON (`json.Marshal`) or indented JSON (`json.MarshalIndent(v, "", "    ")`) when
/// `indent` is `Some(depth)`.
pub(crate) fn write_json<V: Sealed>(out: &mut Vec<u8>, value: &V, indent: Option<usize>) {
    match value.view() {
        View::Null => out.extend_from_slice(b"null"),
        View::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        View::Int(i) => write_int(out, i),
        View::Float(f) => go_float_json(out, f),
        View::Str(s) => json_string(out, s.as_bytes()),
        View::Array(items) => {
            if items.is_empty() {
                out.extend_from_slice(b"[]");
                return;
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, indent.map(|d| d + 1));
                write_json(out, item, indent.map(|d| d + 1));
            }
            newline(out, indent);
            out.push(b']');
        }
        View::Object(object) => {
            let entries = sorted_entries(object);
            if entries.is_empty() {
                out.extend_from_slice(b"{}");
                return;
            }
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                newline(out, indent.map(|d| d + 1));
                json_string(out, key.as_bytes());
                out.push(b':');
                if indent.is_some() {
                    out.push(b' ');
                }
                write_json(out, item, indent.map(|d| d + 1));
            }
            newline(out, indent);
            out.push(b'}');
        }
    }
}

/// The line break and indentation of `MarshalIndent`, nothing in compact mode.
pub(crate) fn newline(out: &mut Vec<u8>, indent: Option<usize>) {
    if let Some(depth) = indent {
        out.push(b'\n');
        for _ in 0..depth {
            out.extend_from_slice(b"    ");
        }
    }
}

/// Go's `%v` of a decoded JSON value (used in one error message): `map[a:1 b:[x y]]`.
pub(crate) fn go_v<V: Sealed>(out: &mut Vec<u8>, value: &V) {
    match value.view() {
        View::Null => out.extend_from_slice(b"<nil>"),
        View::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        View::Int(i) => write_int(out, i),
        View::Float(f) => go_float_v(out, f),
        View::Str(s) => out.extend_from_slice(s.as_bytes()),
        View::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                go_v(out, item);
            }
            out.push(b']');
        }
        View::Object(object) => {
            out.extend_from_slice(b"map[");
            for (i, (key, item)) in sorted_entries(object).into_iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b':');
                go_v(out, item);
            }
            out.push(b']');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(f: f64) -> String {
        let mut out = Vec::new();
        go_float_v(&mut out, f);
        String::from_utf8(out).expect("utf8")
    }

    fn j(f: f64) -> String {
        let mut out = Vec::new();
        go_float_json(&mut out, f);
        String::from_utf8(out).expect("utf8")
    }

    #[test]
    fn floats_like_go_fmt() {
        assert_eq!(v(1234567.0), "1.234567e+06");
        assert_eq!(v(1000000.0), "1e+06");
        assert_eq!(v(123456.0), "123456");
        assert_eq!(v(1.0), "1");
        assert_eq!(v(2.2), "2.2");
        assert_eq!(v(0.0001), "0.0001");
        assert_eq!(v(0.00001), "1e-05");
        assert_eq!(v(-0.0), "-0");
        assert_eq!(v(0.0), "0");
        assert_eq!(v(19.95), "19.95");
        assert_eq!(v(-1.5e300), "-1.5e+300");
        assert_eq!(v(1e100), "1e+100");
        assert_eq!(v(5e-324), "5e-324");
        assert_eq!(v(f64::NAN), "NaN");
        assert_eq!(v(f64::INFINITY), "+Inf");
    }

    #[test]
    fn floats_like_go_encoding_json() {
        assert_eq!(j(1.0), "1");
        assert_eq!(j(1234567.0), "1234567");
        assert_eq!(j(1e20), "100000000000000000000");
        assert_eq!(j(1e21), "1e+21");
        assert_eq!(j(1e-6), "0.000001");
        assert_eq!(j(1e-7), "1e-7");
        assert_eq!(j(1.5e-10), "1.5e-10");
        assert_eq!(j(-0.0), "-0");
        assert_eq!(j(3.03), "3.03");
        assert_eq!(j(123e300), "1.23e+302");
    }

    #[test]
    fn strings_like_go_encoding_json() {
        let mut out = Vec::new();
        json_string(
            &mut out,
            "a\"b\\c\n\t\r\u{8}\u{c}\u{1}<>&\u{2028}\u{2029}é\u{7f}".as_bytes(),
        );
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u003c\\u003e\\u0026\\u2028\\u2029é\u{7f}\""
        );
        let mut out = Vec::new();
        json_string(&mut out, b"x\xffy");
        assert_eq!(out, br#""x\ufffdy""#);
    }

    #[test]
    fn json_and_go_v_of_documents() {
        let doc: serde_json::Value =
            serde_json::from_str(r#"{"b": [1, 2.5, "x", null, {}], "a": {"c": true}, "e": []}"#)
                .expect("json");
        let mut out = Vec::new();
        write_json(&mut out, &doc, None);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            r#"{"a":{"c":true},"b":[1,2.5,"x",null,{}],"e":[]}"#
        );
        let mut out = Vec::new();
        write_json(&mut out, &doc, Some(0));
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "{\n    \"a\": {\n        \"c\": true\n    },\n    \"b\": [\n        1,\n        2.5,\n        \"x\",\n        null,\n        {}\n    ],\n    \"e\": []\n}"
        );
        let mut out = Vec::new();
        go_v(&mut out, &doc);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "map[a:map[c:true] b:[1 2.5 x <nil> map[]] e:[]]"
        );
    }

    #[test]
    fn integers() {
        for i in [0, 7, -7, 1234567890, i64::MIN, i64::MAX] {
            let mut out = Vec::new();
            write_int(&mut out, i);
            assert_eq!(String::from_utf8(out).expect("utf8"), i.to_string());
        }
    }
}
