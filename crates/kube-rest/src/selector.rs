//! Label selectors: a builder, a parser for the set-based syntax and a canonical printer
//! (client-go's `labels.Selector`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Why a selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid label selector {input:?}: {message}")]
pub struct SelectorError {
    input: String,
    message: String,
}

/// One requirement of a [`Selector`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    /// `key=value` (also written `key==value`).
    Equals(String, String),
    /// `key!=value`.
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, BTreeSet<String>),
    /// `key notin (a,b)`.
    NotIn(String, BTreeSet<String>),
    /// `key`.
    Exists(String),
    /// `!key`.
    DoesNotExist(String),
}

impl Requirement {
    /// The label key.
    pub fn key(&self) -> &str {
        match self {
            Requirement::Equals(k, _)
            | Requirement::NotEquals(k, _)
            | Requirement::In(k, _)
            | Requirement::NotIn(k, _)
            | Requirement::Exists(k)
            | Requirement::DoesNotExist(k) => k,
        }
    }

    /// Whether `labels` meet this requirement (`!=` and `notin` match a missing key).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            Requirement::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join =
            |set: &BTreeSet<String>| set.iter().map(String::as_str).collect::<Vec<_>>().join(",");
        match self {
            Requirement::Equals(k, v) => write!(f, "{k}={v}"),
            Requirement::NotEquals(k, v) => write!(f, "{k}!={v}"),
            Requirement::In(k, set) => write!(f, "{k} in ({})", join(set)),
            Requirement::NotIn(k, set) => write!(f, "{k} notin ({})", join(set)),
            Requirement::Exists(k) => write!(f, "{k}"),
            Requirement::DoesNotExist(k) => write!(f, "!{k}"),
        }
    }
}

/// A label selector: every requirement must hold. Printed canonically (requirements sorted by
/// key, set values sorted), as client-go prints them.
///
/// ```
/// use kube_rest::selector::Selector;
///
/// let selector: Selector = "tier in (web, api), !legacy,app=shop".parse()?;
/// assert_eq!(selector.to_string(), "app=shop,!legacy,tier in (api,web)");
/// let built = Selector::new().eq("app", "shop")?.exists("team")?;
/// assert_eq!(built.to_string(), "app=shop,team");
/// # Ok::<(), kube_rest::selector::SelectorError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

fn is_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn check_key(key: &str) -> Result<(), String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name(name),
        None => is_name(key),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid label key {key:?}"))
    }
}

fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || is_name(value) {
        Ok(())
    } else {
        Err(format!("invalid label value {value:?}"))
    }
}

impl Selector {
    /// An empty selector (matches everything).
    pub fn new() -> Selector {
        Selector::default()
    }

    /// Whether there are no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    fn with(mut self, requirement: Requirement) -> Result<Selector, SelectorError> {
        let error = |message: String| SelectorError {
            input: requirement.to_string(),
            message,
        };
        check_key(requirement.key()).map_err(error)?;
        match &requirement {
            Requirement::Equals(_, v) | Requirement::NotEquals(_, v) => {
                check_value(v).map_err(error)?
            }
            Requirement::In(_, set) | Requirement::NotIn(_, set) => {
                if set.is_empty() {
                    return Err(error("in and notin need at least one value".into()));
                }
                for v in set {
                    check_value(v).map_err(error)?;
                }
            }
            Requirement::Exists(_) | Requirement::DoesNotExist(_) => {}
        }
        self.requirements.push(requirement);
        // client-go sorts by key only (stable for equal keys).
        self.requirements.sort_by(|a, b| a.key().cmp(b.key()));
        Ok(self)
    }

    /// Adds `key=value`.
    pub fn eq(self, key: &str, value: &str) -> Result<Selector, SelectorError> {
        self.with(Requirement::Equals(key.into(), value.into()))
    }

    /// Adds `key!=value`.
    pub fn ne(self, key: &str, value: &str) -> Result<Selector, SelectorError> {
        self.with(Requirement::NotEquals(key.into(), value.into()))
    }

    /// Adds `key in (values)`.
    pub fn is_in<I, S>(self, key: &str, values: I) -> Result<Selector, SelectorError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with(Requirement::In(
            key.into(),
            values.into_iter().map(Into::into).collect(),
        ))
    }

    /// Adds `key notin (values)`.
    pub fn not_in<I, S>(self, key: &str, values: I) -> Result<Selector, SelectorError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.with(Requirement::NotIn(
            key.into(),
            values.into_iter().map(Into::into).collect(),
        ))
    }

    /// Adds `key` (the label exists).
    pub fn exists(self, key: &str) -> Result<Selector, SelectorError> {
        self.with(Requirement::Exists(key.into()))
    }

    /// Adds `!key` (the label does not exist).
    pub fn does_not_exist(self, key: &str) -> Result<Selector, SelectorError> {
        self.with(Requirement::DoesNotExist(key.into()))
    }

    /// Whether `labels` meet every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
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

impl From<&Selector> for String {
    fn from(selector: &Selector) -> String {
        selector.to_string()
    }
}

impl From<Selector> for String {
    fn from(selector: Selector) -> String {
        selector.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Equals,
    NotEquals,
    Bang,
    Open,
    Close,
    Comma,
}

fn tokenize(input: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' => {
                chars.next();
                tokens.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    _ => Token::Comma,
                });
            }
            '=' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                }
                tokens.push(Token::Equals);
            }
            '!' => {
                chars.next();
                if chars.peek() == Some(&'=') {
                    chars.next();
                    tokens.push(Token::NotEquals);
                } else {
                    tokens.push(Token::Bang);
                }
            }
            '<' | '>' => {
                return Err(format!(
                    "operator {c:?} is not supported in label selectors"
                ));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | ',' | '=' | '!' | '<' | '>') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(input: &str) -> Result<Selector, SelectorError> {
        let error = |message: String| SelectorError {
            input: input.to_string(),
            message,
        };
        let tokens = tokenize(input).map_err(error)?;
        let mut selector = Selector::new();
        let mut i = 0;
        let word = |i: usize, what: &str| match tokens.get(i) {
            Some(Token::Word(w)) => Ok(w.clone()),
            other => Err(format!("expected {what}, found {}", describe(other))),
        };
        while i < tokens.len() {
            let requirement = if tokens[i] == Token::Bang {
                let key = word(i + 1, "a key after '!'").map_err(error)?;
                i += 2;
                Requirement::DoesNotExist(key)
            } else {
                let key = word(i, "a key").map_err(error)?;
                i += 1;
                match tokens.get(i) {
                    None | Some(Token::Comma) => Requirement::Exists(key),
                    Some(Token::Equals) | Some(Token::NotEquals) => {
                        let negated = tokens[i] == Token::NotEquals;
                        i += 1;
                        // An empty value is allowed (`key=`).
                        let value = match tokens.get(i) {
                            Some(Token::Word(w)) => {
                                i += 1;
                                w.clone()
                            }
                            None | Some(Token::Comma) => String::new(),
                            other => {
                                return Err(error(format!(
                                    "expected a value, found {}",
                                    describe(other)
                                )));
                            }
                        };
                        if negated {
                            Requirement::NotEquals(key, value)
                        } else {
                            Requirement::Equals(key, value)
                        }
                    }
                    Some(Token::Word(op)) if op == "in" || op == "notin" => {
                        let notin = op == "notin";
                        i += 1;
                        if tokens.get(i) != Some(&Token::Open) {
                            return Err(error(format!(
                                "expected '(' after {op}, found {}",
                                describe(tokens.get(i))
                            )));
                        }
                        i += 1;
                        let mut values = BTreeSet::new();
                        loop {
                            match tokens.get(i) {
                                Some(Token::Word(w)) => {
                                    values.insert(w.clone());
                                    i += 1;
                                    match tokens.get(i) {
                                        Some(Token::Comma) => i += 1,
                                        Some(Token::Close) => {
                                            i += 1;
                                            break;
                                        }
                                        other => {
                                            return Err(error(format!(
                                                "expected ',' or ')', found {}",
                                                describe(other)
                                            )));
                                        }
                                    }
                                }
                                Some(Token::Close) => {
                                    i += 1;
                                    break;
                                }
                                other => {
                                    return Err(error(format!(
                                        "expected a value, found {}",
                                        describe(other)
                                    )));
                                }
                            }
                        }
                        if notin {
                            Requirement::NotIn(key, values)
                        } else {
                            Requirement::In(key, values)
                        }
                    }
                    other => {
                        return Err(error(format!(
                            "expected an operator, found {}",
                            describe(other)
                        )));
                    }
                }
            };
            selector = selector.with(requirement).map_err(|e| SelectorError {
                input: input.to_string(),
                message: e.message,
            })?;
            match tokens.get(i) {
                None => {}
                Some(Token::Comma) => {
                    i += 1;
                    if i == tokens.len() {
                        return Err(error("trailing ','".into()));
                    }
                }
                other => {
                    return Err(error(format!(
                        "expected ',' or the end, found {}",
                        describe(other)
                    )));
                }
            }
        }
        Ok(selector)
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end".into(),
        Some(Token::Word(w)) => format!("{w:?}"),
        Some(Token::Equals) => "'='".into(),
        Some(Token::NotEquals) => "'!='".into(),
        Some(Token::Bang) => "'!'".into(),
        Some(Token::Open) => "'('".into(),
        Some(Token::Close) => "')'".into(),
        Some(Token::Comma) => "','".into(),
    }
}
