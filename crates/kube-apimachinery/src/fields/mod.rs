//! Field selectors with apimachinery's rules (`k8s.io/apimachinery/pkg/fields`):
//! `field=value`, `field==value` and `field!=value` terms joined by `,`; `\,`, `\=` and `\\`
//! escape those characters in values.
//!
//! ```
//! use kube_apimachinery::fields::Selector;
//!
//! let selector: Selector = r"status.phase!=Running,metadata.name=a\,b".parse()?;
//! assert_eq!(selector.to_string(), r"metadata.name=a\,b,status.phase!=Running");
//! assert_eq!(selector.required_value("metadata.name"), Some("a,b"));
//! assert!(selector.matches_with(|field| match field {
//!     "metadata.name" => "a,b",
//!     _ => "Pending",
//! }));
//! # Ok::<(), kube_apimachinery::fields::Error>(())
//! ```
//!
//! As in apimachinery, a field that an object does not have reads as the empty string, terms
//! are ordered by their text (so printing is deterministic), a term with neither field nor
//! value (`=`) is dropped, and fields are not validated here: which fields a resource
//! supports is the server's business.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

/// Why a field selector could not be parsed. The messages are the API server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A term without `=`, `==` or `!=`.
    #[error("invalid selector: '{selector}'; can't understand '{term}'")]
    Term {
        /// The whole selector.
        selector: String,
        /// The term.
        term: String,
    },
    /// A backslash not followed by `\`, `,` or `=` (or at the end of a value).
    #[error("invalid field selector: invalid escape sequence: {sequence}")]
    InvalidEscape {
        /// The backslash and what follows it.
        sequence: String,
    },
    /// A `,` or `=` in a value without a backslash. (apimachinery prints the character as
    /// its code point: `61` for `=`.)
    #[error("invalid field selector: unescaped character in value: {}", u32::from(*character))]
    Unescaped {
        /// The character.
        character: char,
    },
}

/// The comparison of a [`Term`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `field=value` (also written `field==value`).
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One `field=value` or `field!=value` condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Term {
    field: String,
    operator: Operator,
    value: String,
}

impl Term {
    /// The field (`metadata.name`...).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The comparison.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The value, unescaped.
    pub fn value(&self) -> &str {
        &self.value
    }

    fn matches(&self, actual: &str) -> bool {
        (actual == self.value) == (self.operator == Operator::Equals)
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.operator {
            Operator::Equals => "=",
            Operator::NotEquals => "!=",
        };
        write!(f, "{}{operator}{}", self.field, escape_value(&self.value))
    }
}

/// The fields of an object a selector can be matched against (apimachinery's
/// `fields.Fields`); a field it does not have reads as the empty string.
pub trait Fields {
    /// The value of `field`, if the object has it.
    fn get(&self, field: &str) -> Option<Cow<'_, str>>;
}

impl<K: std::borrow::Borrow<str> + Ord, V: AsRef<str>> Fields for BTreeMap<K, V> {
    fn get(&self, field: &str) -> Option<Cow<'_, str>> {
        BTreeMap::get(self, field).map(|v| Cow::Borrowed(v.as_ref()))
    }
}

impl<K, V, S> Fields for HashMap<K, V, S>
where
    K: std::borrow::Borrow<str> + Eq + std::hash::Hash,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, field: &str) -> Option<Cow<'_, str>> {
        HashMap::get(self, field).map(|v| Cow::Borrowed(v.as_ref()))
    }
}

impl<F: Fields + ?Sized> Fields for &F {
    fn get(&self, field: &str) -> Option<Cow<'_, str>> {
        (**self).get(field)
    }
}

/// A field selector: every [`Term`] must hold; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    terms: Vec<Term>,
}

impl Selector {
    /// An empty selector, to add terms to.
    pub fn new() -> Self {
        Selector::default()
    }

    /// The selector that matches everything (empty).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Parses the text form (apimachinery's `fields.ParseSelector`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let mut parts = split_terms(text);
        // apimachinery sorts the raw terms, which orders the printed form.
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((field, operator, value)) = split_term(part) else {
                return Err(Error::Term {
                    selector: text.to_string(),
                    term: part.to_string(),
                });
            };
            let value = unescape_value(value)?;
            // A term with neither field nor value selects nothing in particular.
            if field.is_empty() && value.is_empty() {
                continue;
            }
            terms.push(Term {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(Selector { terms })
    }

    /// A selector requiring `field=value` for each pair (apimachinery's `SelectorFromSet`).
    pub fn from_set<I, K, V>(set: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        set.into_iter().fold(Selector::new(), |s, (k, v)| {
            s.with(k.into(), Operator::Equals, v.into())
        })
    }

    fn with(mut self, field: String, operator: Operator, value: String) -> Self {
        let term = Term {
            field,
            operator,
            value,
        };
        // Keep the order parsing gives, so that printing and parsing agree.
        let text = term.to_string();
        let at = self.terms.partition_point(|t| t.to_string() <= text);
        self.terms.insert(at, term);
        self
    }

    /// Adds `field=value` (no escaping needed: the value is kept as it is).
    pub fn eq(self, field: &str, value: &str) -> Self {
        self.with(field.to_string(), Operator::Equals, value.to_string())
    }

    /// Adds `field!=value`.
    pub fn ne(self, field: &str, value: &str) -> Self {
        self.with(field.to_string(), Operator::NotEquals, value.to_string())
    }

    /// Whether the selector has no term (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// The fields the terms use, in order (with repetitions).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(Term::field)
    }

    /// The value the selector requires for `field`: the value of its first `field=value`
    /// term (apimachinery's `RequiresExactMatch`; `metadata.name=x` selects one object).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.operator == Operator::Equals && t.field == field)
            .map(Term::value)
    }

    /// Whether `fields` meet every term.
    pub fn matches<F: Fields + ?Sized>(&self, fields: &F) -> bool {
        self.terms
            .iter()
            .all(|t| t.matches(fields.get(&t.field).as_deref().unwrap_or("")))
    }

    /// Whether the object whose fields `get` reads meets every term (`get` returns the
    /// empty string for a field the object does not have).
    pub fn matches_with<G, S>(&self, mut get: G) -> bool
    where
        G: FnMut(&str) -> S,
        S: AsRef<str>,
    {
        self.terms.iter().all(|t| t.matches(get(&t.field).as_ref()))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

impl FromStr for Selector {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Selector::parse(text)
    }
}

impl From<Selector> for String {
    fn from(selector: Selector) -> String {
        selector.to_string()
    }
}

impl From<&Selector> for String {
    fn from(selector: &Selector) -> String {
        selector.to_string()
    }
}

/// Escapes `\`, `,` and `=` in a value (apimachinery's `EscapeValue`).
pub fn escape_value(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', ',', '=']) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 4);
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// Undoes [`escape_value`] (apimachinery's `UnescapeValue`): `\\`, `\,` and `\=` are the
/// only escapes, and `,` and `=` must be escaped.
pub fn unescape_value(value: &str) -> Result<String, Error> {
    if !value.contains(['\\', ',', '=']) {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(other) => {
                    return Err(Error::InvalidEscape {
                        sequence: format!("\\{other}"),
                    });
                }
                None => {
                    return Err(Error::InvalidEscape {
                        sequence: "\\".to_string(),
                    });
                }
            },
            ',' | '=' => return Err(Error::Unescaped { character: c }),
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Splits at the commas that are not escaped (the terms keep their escapes).
pub(crate) fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::with_capacity(1);
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at its first operator (`!=`, `==` or `=`, tried in that order at each
/// position).
pub(crate) fn split_term(term: &str) -> Option<(&str, Operator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (text, operator) in [
            ("!=", Operator::NotEquals),
            ("==", Operator::Equals),
            ("=", Operator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(text) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}
