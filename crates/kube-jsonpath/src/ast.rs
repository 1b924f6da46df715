//! The parsed form of a template.
//!
//! The tree mirrors client-go's parser (`k8s.io/client-go/util/jsonpath`): a template is a
//! sequence of [`Segment`]s (plain text and `{...}` actions) and an action is a pipeline of
//! [`Step`]s evaluated left to right. Every node carries the [`Span`] of the template text it
//! was parsed from.
//!
//! Equality (`==`) compares the structure only and ignores spans, so that any tree the parser
//! produces, printed with [`Display`](fmt::Display) and parsed again, compares equal to the
//! original:
//!
//! ```
//! use kube_jsonpath::Template;
//!
//! let ast = Template::parse(r#"{range .items[*]}{.metadata.name}{"\n"}{end}"#)?;
//! let again = Template::parse(&ast.to_string())?;
//! assert_eq!(ast, again);
//! # Ok::<(), kube_jsonpath::ParseError>(())
//! ```

use std::fmt::{self, Write as _};

/// A half-open range of byte offsets into the template source.
///
/// For nodes that client-go builds by re-parsing a fragment (union members, filter operands and
/// bracketed keys such as `['a.b']`) the span points into the corresponding part of the
/// original template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    /// Offset of the first byte.
    pub start: usize,
    /// Offset one past the last byte.
    pub end: usize,
}

impl Span {
    /// Creates a span from `start` to `end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A parsed template: text and actions, in order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Template {
    /// The segments of the template in source order.
    pub segments: Vec<Segment>,
}

/// A top-level piece of a template.
#[derive(Debug, Clone)]
pub enum Segment {
    /// Literal text outside `{...}`; it never contains `{`.
    Text {
        /// The text, copied verbatim to the output.
        text: String,
        /// Where the text is in the template.
        span: Span,
    },
    /// A `{...}` action.
    Action {
        /// The pipeline of steps inside the braces (possibly empty).
        steps: Vec<Step>,
        /// Where the action (braces included) is in the template.
        span: Span,
    },
}

impl Segment {
    /// The span of this segment in the template.
    pub fn span(&self) -> Span {
        match self {
            Segment::Text { span, .. } | Segment::Action { span, .. } => *span,
        }
    }
}

impl PartialEq for Segment {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Segment::Text { text: a, .. }, Segment::Text { text: b, .. }) => a == b,
            (Segment::Action { steps: a, .. }, Segment::Action { steps: b, .. }) => a == b,
            _ => false,
        }
    }
}

/// One step of an action's pipeline, with its position.
#[derive(Debug, Clone)]
pub struct Step {
    /// What the step does.
    pub kind: StepKind,
    /// Where the step is in the template.
    pub span: Span,
}

impl Step {
    /// Creates a step with a default (empty) span, handy to build trees by hand.
    pub fn new(kind: StepKind) -> Self {
        Step {
            kind,
            span: Span::default(),
        }
    }
}

impl PartialEq for Step {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl From<StepKind> for Step {
    fn from(kind: StepKind) -> Self {
        Step::new(kind)
    }
}

/// The kinds of pipeline steps (client-go's node types).
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// `.name`: a map key. Backslashes in the source escape terminators and are removed.
    Field(String),
    /// `.*`: every value of a map or array (and every byte of a string).
    Wildcard,
    /// `..`: the recursive descent operator.
    Recursive,
    /// `[i]`, `[a:b]`, `[a:b:c]`, `[*]`: array index or slice.
    Subscript(Subscript),
    /// `[x,y,...]`: the union of several sub-pipelines (always two or more).
    Union(Vec<Vec<Step>>),
    /// `[?(...)]`: keep the array elements for which the condition holds.
    Filter(Box<Filter>),
    /// A bare word such as `range` or `end` (any other word fails at execution time, like
    /// client-go).
    Identifier(String),
    /// A literal: quoted string, integer, float or boolean.
    Literal(Literal),
}

/// Array subscripts, with client-go's distinction between an index and a slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscript {
    /// `[i]` (or `[]`, which client-go treats as `[0]`): one element; negative counts from the
    /// end.
    Index(Option<i64>),
    /// `[start:end:step]`; a missing bound is `None`. `[*]` is `[:]`.
    Slice {
        /// First index (default 0); negative counts from the end.
        start: Option<i64>,
        /// One past the last index (default: the length); negative counts from the end.
        end: Option<i64>,
        /// Step (default 1); must be positive at execution time.
        step: Option<i64>,
    },
}

/// A filter `[?(left op right)]` or an existence filter `[?(left)]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The left operand, evaluated against each element.
    pub left: Vec<Step>,
    /// The comparison operator.
    pub op: FilterOp,
    /// The right operand (empty for [`FilterOp::Exists`]).
    pub right: Vec<Step>,
}

/// Filter operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterOp {
    /// No operator: keep elements for which the left operand yields anything.
    Exists,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `>`
    Gt,
    /// `<=`
    Le,
    /// `>=`
    Ge,
    /// Any other run of `!<>=` characters: accepted by the parser, rejected at execution time
    /// with client-go's "unrecognized filter operator" error.
    Other(String),
}

impl FilterOp {
    pub(crate) fn from_text(op: &str) -> FilterOp {
        match op {
            "==" => FilterOp::Eq,
            "!=" => FilterOp::Ne,
            "<" => FilterOp::Lt,
            ">" => FilterOp::Gt,
            "<=" => FilterOp::Le,
            ">=" => FilterOp::Ge,
            other => FilterOp::Other(other.to_string()),
        }
    }

    /// The operator as written in a template (empty for [`FilterOp::Exists`]).
    pub fn as_str(&self) -> &str {
        match self {
            FilterOp::Exists => "",
            FilterOp::Eq => "==",
            FilterOp::Ne => "!=",
            FilterOp::Lt => "<",
            FilterOp::Gt => ">",
            FilterOp::Le => "<=",
            FilterOp::Ge => ">=",
            FilterOp::Other(s) => s,
        }
    }
}

/// Literals inside actions.
#[derive(Debug, Clone)]
pub enum Literal {
    /// A quoted string (`"..."` or `'...'`), unescaped with Go's rules. Escapes such as
    /// `\xff` can produce bytes that are not UTF-8, so the value is bytes.
    String(Vec<u8>),
    /// An integer such as `3` or `-1`.
    Int(i64),
    /// A number with a `.` (or an integer too large for 64 bits).
    Float(f64),
    /// `true` or `false`.
    Bool(bool),
}

impl PartialEq for Literal {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Literal::String(a), Literal::String(b)) => a == b,
            (Literal::Int(a), Literal::Int(b)) => a == b,
            (Literal::Float(a), Literal::Float(b)) => a.to_bits() == b.to_bits(),
            (Literal::Bool(a), Literal::Bool(b)) => a == b,
            _ => false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Display: print a template that parses back to the same tree.
// ---------------------------------------------------------------------------------------------

/// Where a pipeline is being printed; each place forbids some characters.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Directly inside `{...}`.
    Action,
    /// Inside a filter `[?(...)]`: no `)`, no operator characters in literals, no quotes that
    /// would confuse the quote tracking.
    Filter,
    /// Inside a union member `[a,'b.c']`: no `,`, `]` or `'`.
    Union,
    /// Inside a filter that is itself a union member.
    UnionFilter,
}

impl Ctx {
    fn in_union(self) -> bool {
        matches!(self, Ctx::Union | Ctx::UnionFilter)
    }
    fn in_filter(self) -> bool {
        matches!(self, Ctx::Filter | Ctx::UnionFilter)
    }
}

/// Characters that end a field name or identifier (client-go's `isTerminator`).
pub(crate) fn is_terminator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
    )
}

fn write_field_name(out: &mut String, name: &str) {
    if name.is_empty() {
        out.push('.');
        return;
    }
    out.push('.');
    for c in name.chars() {
        if is_terminator(c) || c == '*' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

fn write_string_literal(out: &mut String, bytes: &[u8], ctx: Ctx) {
    // Characters that would change how the surrounding construct is scanned are written as
    // `\xNN` escapes, which Go's unquoting accepts in both quote styles.
    let must_hex = |b: u8| -> bool {
        (ctx.in_union() && matches!(b, b',' | b']' | b'\''))
            || (ctx.in_filter()
                && matches!(b, b')' | b'(' | b'!' | b'<' | b'>' | b'=' | b'\'' | b'"'))
    };
    out.push('"');
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let last = i + 1 == bytes.len();
        match b {
            // client-go treats a quote preceded by a backslash as escaped, even when that
            // backslash is itself escaped, so a final backslash must not be written as `\\`.
            b'\\' if last => out.push_str("\\x5c"),
            b'\\' => out.push_str("\\\\"),
            _ if must_hex(b) => {
                let _ = write!(out, "\\x{b:02x}");
            }
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\r' => out.push_str("\\r"),
            0x20..=0x7e => out.push(b as char),
            0x00..=0x1f | 0x7f => {
                let _ = write!(out, "\\x{b:02x}");
            }
            _ => {
                // Copy a whole UTF-8 sequence when valid, else escape the byte.
                let len = utf8_len(b);
                let end = i + len;
                if len > 1
                    && end <= bytes.len()
                    && let Ok(s) = std::str::from_utf8(&bytes[i..end])
                {
                    out.push_str(s);
                    i = end;
                    continue;
                }
                let _ = write!(out, "\\x{b:02x}");
            }
        }
        i += 1;
    }
    out.push('"');
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        _ => 1,
    }
}

fn write_float(out: &mut String, f: f64) {
    // Rust's `Display` for f64 never uses an exponent and round-trips exactly; client-go's
    // number scanner only accepts digits, one sign and dots, so make sure a dot is present.
    let s = f.to_string();
    out.push_str(&s);
    if !s.contains('.') {
        out.push_str(".0");
    }
}

fn write_subscript_inner(out: &mut String, sub: &Subscript, in_union: bool) {
    let opt = |out: &mut String, v: Option<i64>| {
        if let Some(v) = v {
            let _ = write!(out, "{v}");
        }
    };
    match *sub {
        Subscript::Index(i) => opt(out, i),
        Subscript::Slice {
            start: None,
            end: None,
            step: None,
        } => out.push_str(if in_union { ":" } else { "*" }),
        Subscript::Slice { start, end, step } => {
            opt(out, start);
            out.push(':');
            opt(out, end);
            if let Some(step) = step {
                let _ = write!(out, ":{step}");
            }
        }
    }
}

fn write_filter(out: &mut String, filter: &Filter, ctx: Ctx) {
    let inner = if ctx.in_union() {
        Ctx::UnionFilter
    } else {
        Ctx::Filter
    };
    out.push_str("?(@");
    write_pipeline(out, &filter.left, inner);
    if filter.op != FilterOp::Exists {
        out.push(' ');
        out.push_str(filter.op.as_str());
        out.push(' ');
        if filter.right.is_empty() {
            out.push('@');
        } else {
            let starts_with_path = matches!(
                filter.right[0].kind,
                StepKind::Field(_)
                    | StepKind::Wildcard
                    | StepKind::Recursive
                    | StepKind::Subscript(_)
                    | StepKind::Union(_)
            );
            if starts_with_path {
                out.push('@');
            }
            write_pipeline(out, &filter.right, inner);
        }
    }
    out.push(')');
}

fn write_step(out: &mut String, step: &StepKind, ctx: Ctx) {
    match step {
        StepKind::Field(name) => write_field_name(out, name),
        StepKind::Wildcard => out.push_str(".*"),
        StepKind::Recursive => out.push_str(".."),
        StepKind::Subscript(sub) => {
            out.push('[');
            write_subscript_inner(out, sub, false);
            out.push(']');
        }
        StepKind::Union(members) => {
            out.push('[');
            for (i, member) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_union_member(out, member);
            }
            out.push(']');
        }
        StepKind::Filter(filter) => {
            out.push('[');
            write_filter(out, filter, ctx);
            out.push(']');
        }
        StepKind::Identifier(name) => out.push_str(name),
        StepKind::Literal(Literal::String(bytes)) => write_string_literal(out, bytes, ctx),
        StepKind::Literal(Literal::Int(i)) => {
            let _ = write!(out, "{i}");
        }
        StepKind::Literal(Literal::Float(f)) => write_float(out, *f),
        StepKind::Literal(Literal::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
    }
}

fn write_union_member(out: &mut String, member: &[Step]) {
    match member {
        [
            Step {
                kind: StepKind::Subscript(sub),
                ..
            },
        ] => write_subscript_inner(out, sub, true),
        [
            Step {
                kind: StepKind::Filter(filter),
                ..
            },
        ] => write_filter(out, filter, Ctx::Union),
        steps => {
            // A quoted key: client-go parses `'key'` as the action `{.key}`.
            let mut chain = String::new();
            write_pipeline(&mut chain, steps, Ctx::Union);
            out.push('\'');
            out.push_str(chain.strip_prefix('.').unwrap_or(&chain));
            out.push('\'');
        }
    }
}

/// Does `prev` (already printed as `printed`) need a space before a step printed as `next`?
fn needs_space(prev: &StepKind, printed: &str, next: &str) -> bool {
    let Some(first) = next.chars().next() else {
        return false;
    };
    match prev {
        StepKind::Field(_)
        | StepKind::Wildcard
        | StepKind::Identifier(_)
        | StepKind::Literal(Literal::Bool(_)) => {
            !is_terminator(first) || (printed.ends_with('.') && first == '.')
        }
        StepKind::Literal(Literal::Int(_) | Literal::Float(_)) => {
            first == '.' || first.is_ascii_digit() || !is_terminator(first)
        }
        StepKind::Recursive => !(first == '.' || first == '[' || first == '"'),
        StepKind::Subscript(_)
        | StepKind::Union(_)
        | StepKind::Filter(_)
        | StepKind::Literal(Literal::String(_)) => false,
    }
}

/// Prints a pipeline, separating steps with a space only where the scanner needs one.
fn write_pipeline(out: &mut String, steps: &[Step], ctx: Ctx) {
    let mut prev: Option<(&StepKind, String)> = None;
    for step in steps {
        let mut text = String::new();
        write_step(&mut text, &step.kind, ctx);
        if let Some((prev_kind, prev_text)) = &prev
            && needs_space(prev_kind, prev_text, &text)
        {
            out.push(' ');
        }
        out.push_str(&text);
        prev = Some((&step.kind, text));
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in &self.segments {
            match segment {
                Segment::Text { text, .. } => f.write_str(text)?,
                Segment::Action { steps, .. } => {
                    let mut out = String::from("{");
                    write_pipeline(&mut out, steps, Ctx::Action);
                    out.push('}');
                    f.write_str(&out)?;
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        write_step(&mut out, &self.kind, Ctx::Action);
        f.write_str(&out)
    }
}
