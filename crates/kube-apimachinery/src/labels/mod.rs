//! Label selectors with apimachinery's rules (`k8s.io/apimachinery/pkg/labels`): the same
//! grammar, validation, canonical form, matching and error messages as the API server.
//!
//! ```
//! use std::collections::BTreeMap;
//! use kube_apimachinery::labels::Selector;
//!
//! let selector: Selector = "tier in (web, api), !legacy,app=shop".parse()?;
//! // Canonical form: requirements sorted by key, set values sorted.
//! assert_eq!(selector.to_string(), "app=shop,!legacy,tier in (api,web)");
//!
//! let labels = BTreeMap::from([("app".to_string(), "shop".to_string()), ("tier".to_string(), "web".to_string())]);
//! assert!(selector.matches(&labels));
//!
//! let built = Selector::new().eq("app", "shop")?.exists("team")?.gt("replicas", 2)?;
//! assert_eq!(built.to_string(), "app=shop,replicas>2,team");
//! # Ok::<(), kube_apimachinery::labels::Error>(())
//! ```
//!
//! # Grammar
//!
//! ```text
//! <selector>    ::= <requirement> | <requirement> "," <selector>
//! <requirement> ::= [!] KEY [ <set-based> | <exact> | <numeric> ]
//! <set-based>   ::= ("in" | "notin") "(" VALUE { "," VALUE } ")"
//! <exact>       ::= ("=" | "==" | "!=") VALUE
//! <numeric>     ::= (">" | "<") INTEGER
//! ```
//!
//! A bare `KEY` requires the label to exist, `!KEY` requires it to be absent. The empty
//! value is valid: `x=` and `x in (a,)` both accept an empty `x`, and `x in ()` means
//! `x in ("")`. Keys are qualified names (an optional DNS-subdomain prefix of at most 253
//! bytes, `/`, and a name of at most 63 bytes); values are at most 63 bytes of
//! alphanumerics, `-`, `_` and `.`, starting and ending with an alphanumeric.
//!
//! Error messages are the API server's (Kubernetes v1.35 wording, `must be no more than 63
//! bytes`), including its quirks: a key rejected by the parser is reported under the field
//! `<nil>`, and a missing `(` says `found 'x' expected: '('` without a comma.

mod parser;
#[cfg(test)]
mod tests;
mod validation;

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::BuildHasher;
use std::str::FromStr;

#[cfg(feature = "k8s-openapi")]
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

pub use validation::{BadValue, FieldError, InvalidRequirement};

use validation::{key_errors, value_errors};

/// Why a label selector or requirement is invalid. The messages are the API server's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The text does not follow the grammar: `found '<found>', expected: <expected>`.
    #[error("{}", syntax_message(found, expected))]
    Syntax {
        /// The token found (empty at the end of the input).
        found: String,
        /// What the grammar allows there.
        expected: &'static str,
    },
    /// One requirement of the text could not be parsed (its syntax, key or values).
    #[error("unable to parse requirement: {source}")]
    Requirement {
        /// The problem.
        #[source]
        source: Box<Error>,
    },
    /// The key, operator or values of a requirement are invalid.
    #[error(transparent)]
    Invalid(#[from] InvalidRequirement),
    /// A `matchExpressions` operator other than `In`, `NotIn`, `Exists` and `DoesNotExist`.
    #[error(
        "{} is not a valid label selector operator",
        crate::gofmt::quote(operator)
    )]
    UnknownOperator {
        /// The operator given.
        operator: String,
    },
}

fn syntax_message(found: &str, expected: &str) -> String {
    // apimachinery writes this one without the comma.
    if expected == "'('" {
        format!("found '{found}' expected: {expected}")
    } else {
        format!("found '{found}', expected: {expected}")
    }
}

/// What a requirement asks of a label (apimachinery's `selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operator {
    /// `key in (a,b)`: the label exists and has one of the values.
    In,
    /// `key notin (a,b)`: the label is absent or has none of the values.
    NotIn,
    /// `key=value`.
    Equals,
    /// `key==value` (the same as `=`, kept as written).
    DoubleEquals,
    /// `key!=value`: the label is absent or has another value.
    NotEquals,
    /// `key`: the label exists.
    Exists,
    /// `!key`: the label does not exist.
    DoesNotExist,
    /// `key>n`: the label is an integer greater than `n`.
    GreaterThan,
    /// `key<n`: the label is an integer less than `n`.
    LessThan,
}

impl Operator {
    /// apimachinery's name of the operator (`in`, `notin`, `=`, `==`, `!=`, `exists`, `!`,
    /// `gt`, `lt`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of labels a selector can be matched against (apimachinery's `labels.Labels`).
///
/// Implemented for string maps, for a JSON object (`metadata.labels` of a
/// `serde_json::Value`; values that are not strings count as absent, since a label value is
/// always a string), for `Option` (no labels at all) and for references.
pub trait Labels {
    /// The value of `key`, if the label is present.
    fn get(&self, key: &str) -> Option<&str>;

    /// Whether the label `key` is present.
    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }
}

impl<K: Borrow<str> + Ord, V: AsRef<str>> Labels for BTreeMap<K, V> {
    fn get(&self, key: &str) -> Option<&str> {
        BTreeMap::get(self, key).map(AsRef::as_ref)
    }
}

impl<K, V, S> Labels for HashMap<K, V, S>
where
    K: Borrow<str> + Eq + std::hash::Hash,
    V: AsRef<str>,
    S: BuildHasher,
{
    fn get(&self, key: &str) -> Option<&str> {
        HashMap::get(self, key).map(AsRef::as_ref)
    }
}

impl Labels for serde_json::Map<String, Value> {
    fn get(&self, key: &str) -> Option<&str> {
        serde_json::Map::get(self, key).and_then(Value::as_str)
    }
}

impl<L: Labels> Labels for Option<L> {
    fn get(&self, key: &str) -> Option<&str> {
        self.as_ref().and_then(|labels| labels.get(key))
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn get(&self, key: &str) -> Option<&str> {
        (**self).get(key)
    }
}

/// One condition on one label: a key, an [`Operator`] and values.
///
/// Values are kept sorted and without duplicates (apimachinery keeps them as given, but
/// prints them sorted and matches them as a set: the behaviour is the same).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A validated requirement (apimachinery's `NewRequirement`): the key must be a
    /// qualified name; `In` and `NotIn` need at least one value, `=`, `==` and `!=` exactly
    /// one, `Exists` and `DoesNotExist` none, `>` and `<` one integer; every value must be a
    /// valid label value. Every problem is reported at once.
    pub fn new<I, S>(key: impl Into<String>, operator: Operator, values: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let key = key.into();
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        let mut errors = Vec::new();
        let key_problems = key_errors(&key);
        if !key_problems.is_empty() {
            errors.push(FieldError::new(
                "key",
                BadValue::String(key.clone()),
                key_problems.join("; "),
            ));
        }
        let list = || BadValue::List(values.clone());
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errors.push(FieldError::new(
                "values",
                list(),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errors.push(FieldError::new(
                    "values",
                    list(),
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errors.push(FieldError::new(
                    "values",
                    list(),
                    "values set must be empty for exists and does not exist",
                ))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(FieldError::new(
                        "values",
                        list(),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(FieldError::new(
                            format!("values[{i}]"),
                            BadValue::String(value.clone()),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let problems = value_errors(value);
            if !problems.is_empty() {
                errors.push(FieldError::new(
                    format!("values[{i}][{key}]"),
                    BadValue::String(value.clone()),
                    problems.join("; "),
                ));
            }
        }
        if let Some(invalid) = InvalidRequirement::from_errors(errors) {
            return Err(Error::Invalid(invalid));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// The label key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The operator.
    pub fn operator(&self) -> Operator {
        self.operator
    }

    /// The values, sorted (empty for `Exists` and `DoesNotExist`).
    pub fn values(&self) -> &[String] {
        &self.values
    }

    fn has_value(&self, value: &str) -> bool {
        self.values.iter().any(|v| v == value)
    }

    /// Whether `labels` meet this requirement. `!=` and `notin` accept a missing label;
    /// `>` and `<` refuse a label that is not an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(actual)), [bound]) = (value.map(str::parse::<i64>), &self.values[..])
                else {
                    return false;
                };
                let Ok(bound) = bound.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    actual > bound
                } else {
                    actual < bound
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = match self.operator {
            Operator::Exists => return f.write_str(&self.key),
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(&self.key)?;
        f.write_str(operator)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: every [`Requirement`] must hold; the empty selector matches everything.
///
/// Requirements are kept sorted by key (stable for equal keys), which makes the printed
/// form canonical: `Display` gives what client-go's `Selector.String()` gives, and parsing
/// that text gives the same selector back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// An empty selector, to add requirements to.
    pub fn new() -> Self {
        Selector::default()
    }

    /// The selector that matches everything (empty; apimachinery's `Everything()`).
    pub fn everything() -> Self {
        Selector::default()
    }

    /// Parses the text form (apimachinery's `labels.Parse`).
    pub fn parse(text: &str) -> Result<Self, Error> {
        let requirements = parser::Parser::new(text).parse()?;
        Ok(Selector::default().with_all(requirements))
    }

    /// A selector requiring each `key=value` of `set`, validated (apimachinery's
    /// `ValidatedSelectorFromSet`).
    pub fn from_set<I, K, V>(set: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let requirements = set
            .into_iter()
            .map(|(k, v)| Requirement::new(k, Operator::Equals, [v]))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Selector::default().with_all(requirements))
    }

    fn with_all(mut self, requirements: impl IntoIterator<Item = Requirement>) -> Self {
        self.requirements.extend(requirements);
        self.requirements.sort_by(|a, b| a.key.cmp(&b.key));
        self
    }

    /// Adds a requirement (apimachinery's `Add`); the requirements stay sorted by key.
    pub fn and(self, requirement: Requirement) -> Self {
        self.with_all([requirement])
    }

    fn push<I, S>(self, key: &str, operator: Operator, values: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(self.and(Requirement::new(key, operator, values)?))
    }

    /// Adds `key=value`.
    pub fn eq(self, key: &str, value: &str) -> Result<Self, Error> {
        self.push(key, Operator::Equals, [value])
    }

    /// Adds `key!=value`.
    pub fn ne(self, key: &str, value: &str) -> Result<Self, Error> {
        self.push(key, Operator::NotEquals, [value])
    }

    /// Adds `key in (values)` (at least one value; `""` is the empty value).
    pub fn is_in<I, S>(self, key: &str, values: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push(key, Operator::In, values)
    }

    /// Adds `key notin (values)` (at least one value).
    pub fn not_in<I, S>(self, key: &str, values: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.push(key, Operator::NotIn, values)
    }

    /// Adds `key`: the label exists.
    pub fn exists(self, key: &str) -> Result<Self, Error> {
        self.push(key, Operator::Exists, Vec::<String>::new())
    }

    /// Adds `!key`: the label does not exist.
    pub fn does_not_exist(self, key: &str) -> Result<Self, Error> {
        self.push(key, Operator::DoesNotExist, Vec::<String>::new())
    }

    /// Adds `key>value`. A negative bound is refused, as by apimachinery: it is not a valid
    /// label value.
    pub fn gt(self, key: &str, value: i64) -> Result<Self, Error> {
        self.push(key, Operator::GreaterThan, [value.to_string()])
    }

    /// Adds `key<value` (a non-negative bound, as [`Selector::gt`]).
    pub fn lt(self, key: &str, value: i64) -> Result<Self, Error> {
        self.push(key, Operator::LessThan, [value.to_string()])
    }

    /// Whether the selector has no requirement (matches everything).
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether `labels` meet every requirement.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// The single value the selector requires for `key`, if its first requirement on `key`
    /// is `=`, `==` or `in` with one value (apimachinery's `RequiresExactMatch`).
    pub fn required_value(&self, key: &str) -> Option<&str> {
        let requirement = self.requirements.iter().find(|r| r.key == key)?;
        match (requirement.operator, &requirement.values[..]) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [value]) => Some(value),
            _ => None,
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, requirement) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
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

impl From<Requirement> for Selector {
    fn from(requirement: Requirement) -> Selector {
        Selector::new().and(requirement)
    }
}

#[cfg(feature = "k8s-openapi")]
impl TryFrom<&LabelSelector> for Selector {
    type Error = Error;

    /// apimachinery's `LabelSelectorAsSelector`: each `matchLabels` entry is `key=value`,
    /// each `matchExpressions` entry `In`, `NotIn`, `Exists` or `DoesNotExist`, validated.
    /// An empty `LabelSelector` matches everything.
    ///
    /// apimachinery turns an absent (nil) selector into one that matches nothing; with an
    /// `Option<LabelSelector>`, treat `None` as matching no object.
    fn try_from(selector: &LabelSelector) -> Result<Selector, Error> {
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement::new(
                key.as_str(),
                Operator::Equals,
                [value.as_str()],
            )?);
        }
        for expression in selector.match_expressions.iter().flatten() {
            let operator = match expression.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(Error::UnknownOperator {
                        operator: other.to_string(),
                    });
                }
            };
            let values = expression.values.iter().flatten().map(String::as_str);
            requirements.push(Requirement::new(expression.key.as_str(), operator, values)?);
        }
        Ok(Selector::default().with_all(requirements))
    }
}

#[cfg(feature = "k8s-openapi")]
impl TryFrom<LabelSelector> for Selector {
    type Error = Error;

    /// The same conversion as from `&LabelSelector`.
    fn try_from(selector: LabelSelector) -> Result<Selector, Error> {
        Selector::try_from(&selector)
    }
}
