//! Error types. Messages use client-go's wording so that scripts grepping kubectl's errors keep
//! working.

use std::fmt;

/// A template that could not be parsed.
///
/// `Display` prints client-go's message (for example `unclosed action`); [`position`]
/// gives the byte offset in the template where the problem was found.
///
/// [`position`]: ParseError::position
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    kind: ParseErrorKind,
    position: usize,
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, position: usize) -> Self {
        ParseError { kind, position }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Byte offset in the template where the error was detected.
    pub fn position(&self) -> usize {
        self.position
    }
}

/// The reasons a template fails to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A `{` without its `}` (or a newline inside an action).
    #[error("unclosed action")]
    UnclosedAction,
    /// A character that cannot start anything inside an action.
    #[error("unrecognized character in action: {}", GoUnicode(*.0))]
    UnrecognizedCharacter(char),
    /// A number literal that is neither an integer nor a float.
    #[error("cannot parse number {0}")]
    CannotParseNumber(String),
    /// A `[` without its `]`.
    #[error("unterminated array")]
    UnterminatedArray,
    /// A `[?(` without its `)`.
    #[error("unterminated filter")]
    UnterminatedFilter,
    /// A filter's `)` not followed by `]`.
    #[error("unclosed array expect ]")]
    UnclosedFilter,
    /// A quoted string without its closing quote.
    #[error("unterminated quoted string")]
    UnterminatedQuotedString,
    /// A quoted string with an invalid escape.
    #[error("unquote string {0} error invalid syntax")]
    InvalidQuotedString(String),
    /// Brackets holding neither an index, a slice, a quoted key nor a union.
    #[error("invalid array index {0}")]
    InvalidArrayIndex(String),
    /// An index that does not fit in 64 bits (or a lone `-`).
    #[error("array index {0} is not a number")]
    ArrayIndexNotNumber(String),
    /// `....` and the like.
    #[error("invalid multiple recursive descent")]
    MultipleRecursiveDescent,
    /// Fragments nested beyond the parser's limit (client-go has no limit).
    #[error("template nesting too deep")]
    TooDeep,
}

/// Go's `%#U` verb: `U+002A '*'`, or `U+0009` for characters Go does not consider printable.
struct GoUnicode(char);

impl fmt::Display for GoUnicode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "U+{:04X}", u32::from(self.0))?;
        if go_is_print(self.0) {
            write!(f, " '{}'", self.0)?;
        }
        Ok(())
    }
}

/// An approximation of Go's `strconv.IsPrint` (letters, marks, numbers, punctuation, symbols
/// and the ASCII space).
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = u32::from(c);
    // Format characters, private use and non-characters are not printable in Go.
    !matches!(u,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xE000..=0xF8FF
        | 0xFFFE | 0xFFFF | 0xF0000..=0x10FFFF)
}

/// An error while executing a template against a document.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// A field or map key that does not exist (and missing keys are not allowed).
    #[error("{0} is not found")]
    NotFound(String),
    /// Indexing or slicing something that is not an array; holds Go's type name, such as
    /// `map[string]interface {}`.
    #[error("{0} is not array or slice")]
    NotArray(String),
    /// An index outside the array.
    #[error("array index out of bounds: index {index}, length {length}")]
    OutOfBounds {
        /// The offending index.
        index: i64,
        /// The array's length.
        length: usize,
    },
    /// A slice whose start is after its end.
    #[error("starting index {start} is greater than ending index {end}")]
    StartAfterEnd {
        /// The resolved start.
        start: i64,
        /// The resolved end.
        end: i64,
    },
    /// A slice step of zero or less.
    #[error("step must be > 0")]
    NonPositiveStep,
    /// Filtering something that is not an array; holds the value as Go's `%v` prints it.
    #[error("{0} is not array or slice and cannot be filtered")]
    NotFilterable(String),
    /// A filter operand that yields several values.
    #[error("can only compare one element at a time")]
    CompareMany,
    /// Comparing values of different kinds (a string and a number, an integer and a float).
    #[error("incompatible types for comparison")]
    IncompatibleComparison,
    /// Comparing maps, arrays or nulls, or ordering booleans.
    #[error("invalid type for comparison")]
    InvalidComparison,
    /// A filter operator other than `== != < > <= >=`.
    #[error("unrecognized filter operator {0}")]
    UnknownOperator(String),
    /// A bare word other than `range` and `end`.
    #[error("unrecognized identifier {0}")]
    UnknownIdentifier(String),
    /// An `{end}` outside any `{range}`.
    #[error("not in range, nothing to end")]
    NothingToEnd,
    /// `{range}` nested beyond the evaluator's limit (client-go has no limit).
    #[error("range nesting too deep")]
    TooDeep,
}

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The template does not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// The template failed while executing.
    #[error(transparent)]
    Execute(#[from] ExecError),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// The input document could not be read or converted.
    #[error("invalid input document: {0}")]
    Input(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_unicode_format() {
        assert_eq!(GoUnicode('*').to_string(), "U+002A '*'");
        assert_eq!(GoUnicode('\t').to_string(), "U+0009");
        assert_eq!(GoUnicode('é').to_string(), "U+00E9 'é'");
        assert_eq!(GoUnicode('\u{200B}').to_string(), "U+200B");
        assert_eq!(GoUnicode('😀').to_string(), "U+1F600 '😀'");
    }
}
