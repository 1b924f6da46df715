//! Label selectors (equality and set-based) and field selectors, parsed and matched like
//! apimachinery's `labels.Parse` and `fields.ParseSelector`.

use serde_json::Value;

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operator {
    Exists,
    DoesNotExist,
    In,
    NotIn,
    Equals,
    NotEquals,
    GreaterThan,
    LessThan,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    Not,
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    OpenParen,
    CloseParen,
    Comma,
    GreaterThan,
    LessThan,
    End,
}

impl Token {
    fn literal(&self) -> String {
        match self {
            Token::Identifier(s) => s.clone(),
            Token::Not => "!".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::In => "in".into(),
            Token::NotIn => "notin".into(),
            Token::OpenParen => "(".into(),
            Token::CloseParen => ")".into(),
            Token::Comma => ",".into(),
            Token::GreaterThan => ">".into(),
            Token::LessThan => "<".into(),
            Token::End => String::new(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '(' | ')' | ',' | '>' | '<')
}

fn lex(input: &str) -> Vec<Token> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (token, width) = match (c, next) {
                ('!', Some('=')) => (Token::NotEquals, 2),
                ('=', Some('=')) => (Token::DoubleEquals, 2),
                ('!', _) => (Token::Not, 1),
                ('=', _) => (Token::Equals, 1),
                ('(', _) => (Token::OpenParen, 1),
                (')', _) => (Token::CloseParen, 1),
                (',', _) => (Token::Comma, 1),
                ('>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            tokens.push(token);
            i += width;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        tokens.push(match word.as_str() {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Identifier(word),
        });
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.position).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        if self.position < self.tokens.len() {
            self.position += 1;
        }
        token
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let mut operator = None;
        if *self.peek() == Token::Not {
            self.next();
            operator = Some(Operator::DoesNotExist);
        }
        let key = match self.next() {
            Token::Identifier(key) => key,
            other => {
                return Err(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    other.literal()
                ));
            }
        };
        validate_label_key(&key)?;
        if operator.is_some() || matches!(self.peek(), Token::Comma | Token::End) {
            if operator.is_some() && !matches!(self.peek(), Token::Comma | Token::End) {
                return Err(format!(
                    "found '{}', expected: ',' or 'end of string'",
                    self.peek().literal()
                ));
            }
            return Ok(Requirement {
                key,
                operator: operator.unwrap_or(Operator::Exists),
                values: Vec::new(),
            });
        }
        let operator = match self.next() {
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Equals | Token::DoubleEquals => Operator::Equals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            other => {
                return Err(format!(
                    "found '{}', expected: {}",
                    other.literal(),
                    "'=', '!=', '==', 'in', notin'"
                ));
            }
        };
        let values = match operator {
            Operator::In | Operator::NotIn => self.value_set()?,
            _ => match self.peek().clone() {
                Token::Identifier(value) => {
                    self.next();
                    vec![value]
                }
                Token::Comma | Token::End => vec![String::new()],
                other => {
                    return Err(format!("found '{}', expected: identifier", other.literal()));
                }
            },
        };
        if matches!(operator, Operator::GreaterThan | Operator::LessThan)
            && values[0].parse::<i64>().is_err()
        {
            return Err("for 'Gt', 'Lt' operators, the value must be an integer".to_string());
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    fn value_set(&mut self) -> Result<Vec<String>, String> {
        match self.next() {
            Token::OpenParen => {}
            other => return Err(format!("found '{}', expected: '('", other.literal())),
        }
        let mut values = Vec::new();
        loop {
            match self.next() {
                Token::Identifier(value) => values.push(value),
                Token::CloseParen if values.is_empty() => {
                    values.push(String::new());
                    return Ok(values);
                }
                Token::Comma => {
                    values.push(String::new());
                    continue;
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        other.literal()
                    ));
                }
            }
            match self.next() {
                Token::Comma => continue,
                Token::CloseParen => return Ok(values),
                other => {
                    return Err(format!("found '{}', expected: ',' or ')'", other.literal()));
                }
            }
        }
    }
}

fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| !p.is_empty() && p.len() <= 253);
    if name_ok && prefix_ok {
        Ok(())
    } else {
        Err(format!(
            "key: Invalid value: {}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            crate::status::go_quote(key)
        ))
    }
}

impl LabelSelector {
    /// Parses a selector; the error text is what the API server puts after
    /// `unable to parse requirement: `.
    pub fn parse(input: &str) -> Result<LabelSelector, String> {
        let mut parser = Parser {
            tokens: lex(input),
            position: 0,
        };
        let mut requirements = Vec::new();
        if *parser.peek() == Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            requirements.push(parser.requirement()?);
            match parser.next() {
                Token::End => break,
                Token::Comma => {
                    if *parser.peek() == Token::End {
                        return Err("found '', expected: identifier after ','".into());
                    }
                }
                other => {
                    return Err(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        other.literal()
                    ));
                }
            }
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether an object with these labels (`metadata.labels`, possibly absent) matches.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.and_then(|l| l.get(&r.key)).and_then(Value::as_str);
            match r.operator {
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
                Operator::In | Operator::Equals => {
                    value.is_some_and(|v| r.values.iter().any(|x| x == v))
                }
                Operator::NotIn | Operator::NotEquals => {
                    value.is_none_or(|v| r.values.iter().all(|x| x != v))
                }
                Operator::GreaterThan | Operator::LessThan => {
                    let (Some(Ok(actual)), Ok(bound)) =
                        (value.map(str::parse::<i64>), r.values[0].parse::<i64>())
                    else {
                        return false;
                    };
                    if r.operator == Operator::GreaterThan {
                        actual > bound
                    } else {
                        actual < bound
                    }
                }
            }
        })
    }
}

/// A parsed field selector: terms `field=value`, `field==value` or `field!=value`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldTerm {
    field: String,
    value: String,
    equal: bool,
}

fn split_unescaped(input: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in input.chars() {
        if escaped {
            current.push('\\');
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == separator {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    if escaped {
        current.push('\\');
    }
    parts.push(current);
    parts
}

fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{e}"
                    ));
                }
                None => return Err("invalid field selector: unterminated escape sequence".into()),
            }
        } else if c == ',' || c == '=' {
            return Err(format!("invalid field selector: unescaped {c}"));
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

impl FieldSelector {
    /// Parses a field selector (the error is the API server's message).
    pub fn parse(input: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        if input.trim().is_empty() {
            return Ok(FieldSelector { terms });
        }
        for part in split_unescaped(input, ',') {
            if part.is_empty() {
                continue;
            }
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                ));
            };
            terms.push(FieldTerm {
                field: field.trim().to_string(),
                value: unescape(value)?,
                equal,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The fields the selector uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// The value required for `field` by an equality term, if any (used to detect
    /// single-object selectors such as `metadata.name=x`).
    pub fn required_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.equal && t.field == field)
            .map(|t| t.value.as_str())
    }

    /// Whether `object` matches every term.
    pub fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|t| {
            let actual = field_value(object, &t.field);
            (actual == t.value) == t.equal
        })
    }
}

/// The value of a field label of an object, as the API server renders it for selectors.
pub fn field_value(object: &Value, field: &str) -> String {
    let path: Vec<&str> = match field {
        // events: `source` is source.component.
        "source" => vec!["source", "component"],
        other => other.split('.').collect(),
    };
    let mut current = object;
    for segment in path {
        match current.get(segment) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Value {
        v
    }

    #[test]
    fn equality_set_and_existence() {
        let l = labels(json!({"app": "demo", "idx": "3", "tier": "web"}));
        let yes = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&l));
        assert!(yes("app=demo"));
        assert!(yes("app==demo"));
        assert!(!yes("app!=demo"));
        assert!(yes("idx in (2,3),app!=other"));
        assert!(!yes("idx notin (2, 3)"));
        assert!(yes("tier"));
        assert!(!yes("!tier"));
        assert!(yes("!missing"));
        assert!(yes("idx>2"));
        assert!(!yes("idx<3"));
        assert!(yes(""));
        assert!(LabelSelector::parse("!tier").unwrap().matches(None));
    }

    #[test]
    fn errors_read_like_the_api_server() {
        assert_eq!(
            LabelSelector::parse("app in (a").unwrap_err(),
            "found '', expected: ',' or ')'"
        );
        assert!(LabelSelector::parse("app in a").is_err());
        assert!(LabelSelector::parse("=x").is_err());
    }

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "p2", "namespace": "trace"}, "status": {"phase": "Running"}});
        let sel = FieldSelector::parse("metadata.name=p2,status.phase!=Pending").unwrap();
        assert!(sel.matches(&pod));
        assert_eq!(sel.required_value("metadata.name"), Some("p2"));
        assert!(
            !FieldSelector::parse("status.phase=Pending")
                .unwrap()
                .matches(&pod)
        );
        let event = json!({"source": {"component": "kubelet"}});
        assert!(
            FieldSelector::parse("source=kubelet")
                .unwrap()
                .matches(&event)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
        assert!(
            FieldSelector::parse("a=b\\,c")
                .unwrap()
                .matches(&json!({"a": "b,c"}))
        );
    }
}
