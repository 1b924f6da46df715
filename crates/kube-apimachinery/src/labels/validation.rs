//! apimachinery's label key and value rules (`validation.IsQualifiedName`,
//! `validation.IsValidLabelValue`) and the field errors a requirement reports, worded as
//! Kubernetes v1.35 words them.

use std::fmt;

use crate::gofmt;

const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// The longest name part of a key, and the longest value.
pub(crate) const MAX_NAME_LENGTH: usize = 63;
/// The longest key prefix (a DNS subdomain).
pub(crate) const MAX_PREFIX_LENGTH: usize = 253;

/// apimachinery's `RegexError`.
fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let mut out = String::from(message);
    if examples.is_empty() {
        out.push_str(" (regex used for validation is '");
    } else {
        out.push_str(" (e.g. ");
        for (i, example) in examples.iter().enumerate() {
            if i > 0 {
                out.push_str(" or ");
            }
            out.push('\'');
            out.push_str(example);
            out.push_str("', ");
        }
        out.push_str("regex used for validation is '");
    }
    out.push_str(regex);
    out.push_str("')");
    out
}

fn max_len_error(length: usize) -> String {
    format!("must be no more than {length} bytes")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`.
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        !b.is_empty()
            && alnum(&b[0])
            && alnum(&b[b.len() - 1])
            && b.iter().all(|c| alnum(c) || *c == b'-')
    })
}

/// The problems of a label key (`IsQualifiedName`); empty when the key is valid.
pub(crate) fn key_errors(key: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = key.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_string());
            } else {
                if prefix.len() > MAX_PREFIX_LENGTH {
                    errors.push(format!("prefix part {}", max_len_error(MAX_PREFIX_LENGTH)));
                }
                if !is_dns1123_subdomain(prefix) {
                    errors.push(format!(
                        "prefix part {}",
                        regex_error(
                            DNS1123_SUBDOMAIN_ERR,
                            DNS1123_SUBDOMAIN_FMT,
                            &["example.com"]
                        )
                    ));
                }
            }
            *name
        }
        _ => {
            errors.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_ERR, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errors;
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_string());
    } else if name.len() > MAX_NAME_LENGTH {
        errors.push(format!("name part {}", max_len_error(MAX_NAME_LENGTH)));
    }
    if !is_label_name(name) {
        errors.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_ERR,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errors
}

/// The problems of a label value (`IsValidLabelValue`); empty when the value is valid.
pub(crate) fn value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > MAX_NAME_LENGTH {
        errors.push(max_len_error(MAX_NAME_LENGTH));
    }
    if !value.is_empty() && !is_label_name(value) {
        errors.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// The value a [`FieldError`] rejects.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BadValue {
    /// One string (printed quoted, as Go's `%q`).
    String(String),
    /// A list of values (printed as JSON).
    List(Vec<String>),
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::String(s) => f.write_str(&gofmt::quote(s)),
            BadValue::List(values) => f.write_str(&gofmt::json_string_list(values)),
        }
    }
}

/// One invalid part of a requirement, as apimachinery's `field.Error` of type `Invalid`
/// reports it: `<field>: Invalid value: <value>: <detail>`.
///
/// `field` is the path of the part: `key`, `values`, `values[0]`, `values[0][<key>]`, or
/// `<nil>` for a key rejected while parsing (apimachinery's parser validates keys with no
/// path, and the API server's message says `<nil>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldError {
    field: String,
    value: BadValue,
    detail: String,
}

impl FieldError {
    pub(crate) fn new(
        field: impl Into<String>,
        value: BadValue,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            value,
            detail: detail.into(),
        }
    }

    /// The path of the invalid part (`key`, `values[0][app]`...).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The rejected value.
    pub fn value(&self) -> &BadValue {
        &self.value
    }

    /// Why it is invalid.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: Invalid value: {}", self.field, self.value)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Every problem of one requirement (apimachinery's aggregate of field errors): one error
/// prints alone, several print as `[first, second]`, duplicates once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InvalidRequirement {
    errors: Vec<FieldError>,
}

impl InvalidRequirement {
    /// Builds the aggregate; `None` when there is no error. Duplicate messages are dropped.
    pub(crate) fn from_errors(errors: Vec<FieldError>) -> Option<Self> {
        let mut unique: Vec<FieldError> = Vec::with_capacity(errors.len());
        for error in errors {
            if !unique.iter().any(|e| e.to_string() == error.to_string()) {
                unique.push(error);
            }
        }
        (!unique.is_empty()).then_some(InvalidRequirement { errors: unique })
    }

    /// The individual errors, in the order they were found.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }
}

impl fmt::Display for InvalidRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.errors.as_slice() {
            return write!(f, "{only}");
        }
        f.write_str("[")?;
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{error}")?;
        }
        f.write_str("]")
    }
}

impl std::error::Error for InvalidRequirement {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key_errors("app").is_empty());
        assert!(key_errors("example.com/App_1").is_empty());
        assert!(key_errors("0.1.2.domain/99").is_empty());
        assert_eq!(
            key_errors("-bad"),
            [
                "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
            ]
        );
        assert_eq!(
            key_errors(&"a".repeat(64)),
            ["name part must be no more than 63 bytes"]
        );
        assert_eq!(key_errors("/a"), ["prefix part must be non-empty"]);
        assert_eq!(
            key_errors("Example.com/a"),
            [
                "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert_eq!(
            key_errors(&format!("{}/a", "a".repeat(254))),
            ["prefix part must be no more than 253 bytes"]
        );
        assert_eq!(key_errors("a/").len(), 2, "empty name: non-empty and regex");
        assert!(key_errors("a/b/c")[0].starts_with("a valid label key must consist of"));
        assert!(key_errors("a/b/c")[0].ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
    }

    #[test]
    fn values() {
        assert!(value_errors("").is_empty());
        assert!(value_errors("my_value.1").is_empty());
        assert_eq!(
            value_errors(&"a".repeat(64)),
            ["must be no more than 63 bytes"]
        );
        assert_eq!(value_errors("-1").len(), 1);
        assert_eq!(value_errors(&"-".repeat(64)).len(), 2);
    }

    #[test]
    fn aggregates() {
        let one = FieldError::new("key", BadValue::String("a b".into()), "bad");
        let list = FieldError::new("values", BadValue::List(vec![]), "empty");
        assert_eq!(one.to_string(), r#"key: Invalid value: "a b": bad"#);
        let single = InvalidRequirement::from_errors(vec![one.clone(), one.clone()]).unwrap();
        assert_eq!(single.to_string(), r#"key: Invalid value: "a b": bad"#);
        let both = InvalidRequirement::from_errors(vec![one, list]).unwrap();
        assert_eq!(
            both.to_string(),
            r#"[key: Invalid value: "a b": bad, values: Invalid value: []: empty]"#
        );
        assert!(InvalidRequirement::from_errors(vec![]).is_none());
    }
}
