//! The lexer and the recursive-descent parser of label selectors, apimachinery's
//! (`labels.Lexer`, `labels.Parser`) token for token, so that every input is accepted or
//! refused as the API server does and with the same message.

use super::validation::{BadValue, FieldError, InvalidRequirement, key_errors};
use super::{Error, Operator, Requirement};

/// A lexer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// `' '`, `'\t'`, `'\r'` or `'\n'` (other Unicode spaces are part of identifiers).
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits a selector into tokens and their literal text.
///
/// Like apimachinery's, the lexer works on bytes and reads a NUL byte as the end of the
/// input (Go's lexer returns 0 at the end and does not tell the two apart).
pub(crate) struct Lexer<'a> {
    input: &'a str,
    position: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(input: &'a str) -> Self {
        Lexer { input, position: 0 }
    }

    fn read(&mut self) -> u8 {
        match self.input.as_bytes().get(self.position) {
            Some(&b) => {
                self.position += 1;
                b
            }
            None => 0,
        }
    }

    /// The next token and its literal (empty at the end).
    pub(crate) fn lex(&mut self) -> (Token, &'a str) {
        let mut b = self.read();
        while is_whitespace(b) {
            b = self.read();
        }
        if b == 0 {
            return (Token::EndOfString, "");
        }
        let start = self.position - 1;
        if is_special(b) {
            // The longest operator: every single special character is one, and `!=` and
            // `==` are the only two-character ones.
            let next = self.input.as_bytes().get(self.position).copied();
            let (token, len) = match (b, next) {
                (b'!', Some(b'=')) => (Token::NotEquals, 2),
                (b'=', Some(b'=')) => (Token::DoubleEquals, 2),
                (b'!', _) => (Token::DoesNotExist, 1),
                (b'=', _) => (Token::Equals, 1),
                (b'(', _) => (Token::OpenPar, 1),
                (b')', _) => (Token::ClosedPar, 1),
                (b',', _) => (Token::Comma, 1),
                (b'>', _) => (Token::GreaterThan, 1),
                _ => (Token::LessThan, 1),
            };
            self.position = start + len;
            // Go's scanner reads one byte past the operator: a NUL there is consumed.
            if self.input.as_bytes().get(self.position) == Some(&0) {
                self.position += 1;
            }
            return (token, &self.input[start..start + len]);
        }
        // An identifier or keyword: up to a special character, a space, a NUL or the end.
        let mut end = self.position;
        loop {
            match self.input.as_bytes().get(end) {
                None => break,
                Some(0) => {
                    // Consumed, like Go's reader, but not part of the identifier.
                    self.position = end + 1;
                    let literal = &self.input[start..end];
                    return (keyword(literal), literal);
                }
                Some(&c) if is_special(c) || is_whitespace(c) => break,
                Some(_) => end += 1,
            }
        }
        self.position = end;
        let literal = &self.input[start..end];
        (keyword(literal), literal)
    }
}

fn keyword(literal: &str) -> Token {
    match literal {
        "in" => Token::In,
        "notin" => Token::NotIn,
        _ => Token::Identifier,
    }
}

/// Whether `in` and `notin` are keywords (after a key) or plain values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Context {
    KeyAndOperator,
    Values,
}

pub(crate) struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

fn syntax(found: &str, expected: &'static str) -> Error {
    Error::Syntax {
        found: found.to_string(),
        expected,
    }
}

impl<'a> Parser<'a> {
    /// Scans the whole input (up to the first end of string).
    pub(crate) fn new(input: &'a str) -> Self {
        let mut lexer = Lexer::new(input);
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    #[cfg(test)]
    pub(crate) fn tokens(&self) -> Vec<Token> {
        self.items.iter().map(|(t, _)| *t).collect()
    }

    fn item(&self, context: Context) -> (Token, &'a str) {
        // The last item is always the end of string; never read past it.
        let (token, literal) = self.items[self.position.min(self.items.len() - 1)];
        match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => (Token::Identifier, literal),
            _ => (token, literal),
        }
    }

    pub(crate) fn lookahead(&self, context: Context) -> (Token, &'a str) {
        self.item(context)
    }

    pub(crate) fn consume(&mut self, context: Context) -> (Token, &'a str) {
        let item = self.item(context);
        self.position += 1;
        item
    }

    /// The requirements, in input order (the caller sorts them).
    pub(crate) fn parse(&mut self) -> Result<Vec<Requirement>, Error> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self.requirement().map_err(|e| Error::Requirement {
                        source: Box::new(e),
                    })?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(syntax(literal, "identifier after ','"));
                            }
                        }
                        _ => return Err(syntax(literal, "',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => return Err(syntax(literal, "!, identifier, or 'end of string'")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, Error> {
        let (key, operator) = self.key_and_inferred_operator()?;
        if let Some(operator) = operator {
            return Requirement::new(key, operator, Vec::<String>::new());
        }
        let operator = self.operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.values()?,
            _ => self.exact_value()?,
        };
        Requirement::new(key, operator, values)
    }

    /// The key, and `Exists` or `DoesNotExist` when no binary operator follows.
    fn key_and_inferred_operator(&mut self) -> Result<(&'a str, Option<Operator>), Error> {
        let mut operator = None;
        let (mut token, mut literal) = self.consume(Context::Values);
        if token == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(syntax(literal, "identifier"));
        }
        let errors = key_errors(literal);
        if !errors.is_empty() {
            // The parser validates the key with no field path: Go prints it as `<nil>`.
            let error = FieldError::new(
                "<nil>",
                BadValue::String(literal.to_string()),
                errors.join("; "),
            );
            return Err(Error::Invalid(
                InvalidRequirement::from_errors(vec![error]).expect("one error"),
            ));
        }
        let (next, _) = self.lookahead(Context::Values);
        if (next == Token::EndOfString || next == Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((literal, operator))
    }

    pub(crate) fn operator(&mut self) -> Result<Operator, Error> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(syntax(literal, "in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// `(a,b)`: a set; `()` and empty elements are the empty value.
    fn values(&mut self) -> Result<Vec<String>, Error> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(syntax(literal, "'('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.identifiers()?;
                // identifiers() stops before a ')'.
                self.consume(Context::Values);
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(syntax(literal, "',', ')' or identifier")),
        }
    }

    /// A comma-separated list of possibly empty identifiers, up to (not including) `)`.
    fn identifiers(&mut self) -> Result<Vec<String>, Error> {
        let mut values: Vec<String> = Vec::new();
        let insert = |values: &mut Vec<String>, v: &str| {
            if !values.iter().any(|x| x == v) {
                values.push(v.to_string());
            }
        };
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    insert(&mut values, literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(syntax(literal, "',' or ')'")),
                    }
                }
                Token::Comma => {
                    // "(," and ",," and ",)" all add the empty value.
                    if values.is_empty() {
                        insert(&mut values, "");
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        insert(&mut values, "");
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        // ",,": the next comma is read by the next turn of the loop.
                        insert(&mut values, "");
                    }
                }
                _ => return Err(syntax(literal, "',', or identifier")),
            }
        }
    }

    /// The one value of `=`, `==`, `!=`, `>` and `<` (empty before `,` or the end).
    fn exact_value(&mut self) -> Result<Vec<String>, Error> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            return Ok(vec![literal.to_string()]);
        }
        Err(syntax(literal, "identifier"))
    }
}
