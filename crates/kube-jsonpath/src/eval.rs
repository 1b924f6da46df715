//! The evaluator: client-go's `FindResults`/`walk`/`PrintResults`, over borrowed values.
//!
//! Intermediate results are `Item`s: references into the document or the template, or small
//! scalars, so no JSON value is ever cloned. Output is written straight into a byte buffer.

use crate::ast::{FilterOp, Literal, Segment, Step, StepKind, Subscript, Template};
use crate::error::ExecError;
use crate::print;
use crate::value::sealed::{Sealed, View};

/// `{range}` nested deeper than this fails instead of exhausting the stack.
const MAX_RANGE_DEPTH: usize = 512;

/// One value flowing through a pipeline (client-go's `reflect.Value`).
enum Item<'a, V> {
    /// A value inside the input document.
    Node(&'a V),
    /// A string from the template (text or quoted literal).
    Text(&'a [u8]),
    /// An integer literal (Go `int`).
    Int(i64),
    /// A float literal.
    Float(f64),
    /// A boolean literal.
    Bool(bool),
    /// One byte of a string, produced by `*` on strings (Go `uint8`).
    Byte(u8),
    /// Go's invalid `reflect.Value`: the input of a `range` body over a null or an empty list.
    Invalid,
}

// Manual impls: deriving would require `V: Copy`.
impl<V> Clone for Item<'_, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for Item<'_, V> {}

/// Options of one execution.
#[derive(Clone, Copy)]
pub(crate) struct Options {
    pub(crate) allow_missing_keys: bool,
    pub(crate) json_output: bool,
}

/// Executes `template` on `data`, appending the output to `out`.
pub(crate) fn execute<V: Sealed>(
    template: &Template,
    data: &V,
    options: Options,
    out: &mut Vec<u8>,
) -> Result<(), ExecError> {
    let mut state = State {
        begin_range: 0,
        in_range: 0,
        end_range: 0,
        last_end: None,
        depth: 0,
        options,
        pool: Vec::new(),
    };
    // Go's `reflect.ValueOf(nil)`: a null document is the invalid value (`{@}` prints
    // `<no value>`), not a null inside a document.
    let root = match data.view() {
        View::Null => Item::Invalid,
        _ => Item::Node(data),
    };
    state.find_results(&template.segments, 0, root, true, out)
}

struct State<'a, V> {
    begin_range: usize,
    in_range: usize,
    end_range: usize,
    /// Index of the segment holding the most recent `{end}` that closed a loop.
    last_end: Option<usize>,
    depth: usize,
    options: Options,
    /// Reusable buffers, to keep allocations out of the hot loops.
    pool: Vec<Vec<Item<'a, V>>>,
}

impl<'a, V: Sealed> State<'a, V> {
    fn take(&mut self) -> Vec<Item<'a, V>> {
        let mut buf = self.pool.pop().unwrap_or_default();
        buf.clear();
        buf
    }

    fn give(&mut self, buf: Vec<Item<'a, V>>) {
        self.pool.push(buf);
    }

    /// client-go's `FindResults`: runs the segments from `start` to the end against `cur`,
    /// with the same `range`/`end` bookkeeping (but no mutation of the template, so a template
    /// can be executed any number of times).
    fn find_results(
        &mut self,
        segments: &'a [Segment],
        start: usize,
        cur: Item<'a, V>,
        emit: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), ExecError> {
        let mut results = self.take();
        let mut i = start;
        while i < segments.len() {
            results.clear();
            match &segments[i] {
                Segment::Text { text, .. } => results.push(Item::Text(text.as_bytes())),
                Segment::Action { steps, .. } => self.eval_list(&[cur], steps, &mut results)?,
            }
            if self.end_range > 0 && self.end_range <= self.in_range {
                self.end_range -= 1;
                self.last_end = Some(i);
                break;
            }
            if self.begin_range > 0 {
                self.begin_range -= 1;
                self.in_range += 1;
                self.depth += 1;
                if self.depth > MAX_RANGE_DEPTH {
                    return Err(ExecError::TooDeep);
                }
                if results.is_empty() {
                    // Still walk the body, so that its `{end}` is found; print nothing.
                    self.find_results(segments, i + 1, Item::Invalid, false, out)?;
                } else {
                    for &value in &results {
                        // Go re-enters with `value.Interface()`: a null becomes invalid.
                        let value = match value {
                            Item::Node(node) if matches!(node.view(), View::Null) => Item::Invalid,
                            other => other,
                        };
                        self.find_results(segments, i + 1, value, emit, out)?;
                    }
                }
                self.depth -= 1;
                self.in_range -= 1;
                if let Some(end) = self.last_end
                    && end > i
                    && end < segments.len()
                {
                    i = end;
                }
                i += 1;
                continue;
            }
            if emit {
                self.print_results(&results, out);
            }
            i += 1;
        }
        self.give(results);
        Ok(())
    }

    // -- printing ------------------------------------------------------------------------

    /// client-go's `PrintResults` for one group of results.
    fn print_results(&self, results: &[Item<'a, V>], out: &mut Vec<u8>) {
        if self.options.json_output {
            if results.is_empty() {
                out.extend_from_slice(b"[]");
            } else {
                out.push(b'[');
                for (i, item) in results.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    print::newline(out, Some(1));
                    item_json(out, item, Some(1));
                }
                print::newline(out, Some(0));
                out.push(b']');
            }
            out.push(b'\n');
            return;
        }
        for (i, item) in results.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            item_text(out, item);
        }
    }

    // -- walking -------------------------------------------------------------------------

    /// client-go's `evalList`: runs the steps as a pipeline. On error `out` holds what the
    /// failing step returned, which matters for existence filters.
    fn eval_list(
        &mut self,
        input: &[Item<'a, V>],
        steps: &'a [Step],
        out: &mut Vec<Item<'a, V>>,
    ) -> Result<(), ExecError> {
        out.clear();
        match steps {
            [] => {
                out.extend_from_slice(input);
                Ok(())
            }
            [only] => self.eval_step(input, only, out),
            [first, rest @ ..] => {
                let mut cur = self.take();
                let result = self.eval_step(input, first, &mut cur);
                if result.is_err() {
                    std::mem::swap(out, &mut cur);
                    self.give(cur);
                    return result;
                }
                for step in rest {
                    out.clear();
                    let result = self.eval_step(&cur, step, out);
                    if result.is_err() {
                        self.give(cur);
                        return result;
                    }
                    std::mem::swap(out, &mut cur);
                }
                std::mem::swap(out, &mut cur);
                self.give(cur);
                Ok(())
            }
        }
    }

    fn eval_step(
        &mut self,
        input: &[Item<'a, V>],
        step: &'a Step,
        out: &mut Vec<Item<'a, V>>,
    ) -> Result<(), ExecError> {
        match &step.kind {
            StepKind::Field(name) => self.eval_field(input, name, out),
            StepKind::Wildcard => {
                for item in input {
                    push_children(*item, out);
                }
                Ok(())
            }
            StepKind::Recursive => {
                eval_recursive(input, out);
                Ok(())
            }
            StepKind::Subscript(subscript) => eval_subscript(input, subscript, out),
            StepKind::Union(members) => {
                let mut part = self.take();
                for member in members {
                    if let Err(e) = self.eval_list(input, member, &mut part) {
                        out.clear();
                        out.extend_from_slice(input);
                        self.give(part);
                        return Err(e);
                    }
                    out.extend_from_slice(&part);
                }
                self.give(part);
                Ok(())
            }
            StepKind::Filter(filter) => self.eval_filter(input, filter, out),
            StepKind::Identifier(name) => match name.as_str() {
                "range" => {
                    self.begin_range += 1;
                    out.extend_from_slice(input);
                    Ok(())
                }
                "end" => {
                    if self.in_range > 0 {
                        self.end_range += 1;
                        Ok(())
                    } else {
                        Err(ExecError::NothingToEnd)
                    }
                }
                other => {
                    out.extend_from_slice(input);
                    Err(ExecError::UnknownIdentifier(other.to_string()))
                }
            },
            StepKind::Literal(Literal::String(bytes)) => {
                out.push(Item::Text(bytes));
                Ok(())
            }
            StepKind::Literal(Literal::Int(i)) => {
                out.extend(std::iter::repeat_n(Item::Int(*i), input.len()));
                Ok(())
            }
            StepKind::Literal(Literal::Float(f)) => {
                out.extend(std::iter::repeat_n(Item::Float(*f), input.len()));
                Ok(())
            }
            StepKind::Literal(Literal::Bool(b)) => {
                out.extend(std::iter::repeat_n(Item::Bool(*b), input.len()));
                Ok(())
            }
        }
    }

    fn eval_field(
        &mut self,
        input: &[Item<'a, V>],
        name: &str,
        out: &mut Vec<Item<'a, V>>,
    ) -> Result<(), ExecError> {
        if input.is_empty() {
            return Ok(());
        }
        for item in input {
            if let Item::Node(node) = item
                && let Some(value) = node.get_key(name)
            {
                out.push(Item::Node(value));
            }
        }
        if out.is_empty() && !self.options.allow_missing_keys {
            return Err(ExecError::NotFound(name.to_string()));
        }
        Ok(())
    }

    fn eval_filter(
        &mut self,
        input: &[Item<'a, V>],
        filter: &'a crate::ast::Filter,
        out: &mut Vec<Item<'a, V>>,
    ) -> Result<(), ExecError> {
        let mut lefts = self.take();
        let mut rights = self.take();
        let result = self.filter_into(input, filter, out, &mut lefts, &mut rights);
        self.give(lefts);
        self.give(rights);
        result
    }

    fn filter_into(
        &mut self,
        input: &[Item<'a, V>],
        filter: &'a crate::ast::Filter,
        out: &mut Vec<Item<'a, V>>,
        lefts: &mut Vec<Item<'a, V>>,
        rights: &mut Vec<Item<'a, V>>,
    ) -> Result<(), ExecError> {
        let fail = |out: &mut Vec<Item<'a, V>>, e: ExecError| {
            out.clear();
            out.extend_from_slice(input);
            Err(e)
        };
        for item in input {
            let elements = match item {
                Item::Node(node) => match node.view() {
                    View::Array(elements) => elements,
                    _ => return fail(out, ExecError::NotFilterable(go_v_item(item))),
                },
                other => return fail(out, ExecError::NotFilterable(go_v_item(other))),
            };
            for element in elements {
                let temp = [Item::Node(element)];
                let left_result = self.eval_list(&temp, &filter.left, lefts);
                if filter.op == FilterOp::Exists {
                    // client-go ignores the error here and looks at what was returned.
                    if !lefts.is_empty() {
                        out.push(Item::Node(element));
                    }
                    continue;
                }
                if let Err(e) = left_result {
                    return fail(out, e);
                }
                let left = match lefts.as_slice() {
                    [] => continue,
                    [one] => *one,
                    _ => return fail(out, ExecError::CompareMany),
                };
                if let Err(e) = self.eval_list(&temp, &filter.right, rights) {
                    return fail(out, e);
                }
                let right = match rights.as_slice() {
                    [] => continue,
                    [one] => *one,
                    _ => return fail(out, ExecError::CompareMany),
                };
                if compare(&filter.op, left, right)? {
                    out.push(Item::Node(element));
                }
            }
        }
        Ok(())
    }
}

/// The children `*` yields: map values, array elements, bytes of strings.
fn push_children<'a, V: Sealed>(item: Item<'a, V>, out: &mut Vec<Item<'a, V>>) {
    match item {
        Item::Node(node) => match node.view() {
            View::Object(object) => object.for_each_entry(&mut |_, v| out.push(Item::Node(v))),
            View::Array(elements) => out.extend(elements.iter().map(Item::Node)),
            View::Str(s) => out.extend(s.bytes().map(Item::Byte)),
            _ => {}
        },
        Item::Text(bytes) => out.extend(bytes.iter().copied().map(Item::Byte)),
        _ => {}
    }
}

/// client-go's `evalRecursive`: every value that has children, in pre-order, each followed
/// by its descendants. Iterative, so deep documents cannot overflow the stack.
fn eval_recursive<'a, V: Sealed>(input: &[Item<'a, V>], out: &mut Vec<Item<'a, V>>) {
    let mut stack: Vec<Item<'a, V>> = input.iter().rev().copied().collect();
    let mut children = Vec::new();
    while let Some(item) = stack.pop() {
        children.clear();
        push_children(item, &mut children);
        if !children.is_empty() {
            out.push(item);
            stack.extend(children.drain(..).rev());
        }
    }
}

/// client-go's `evalArray`.
fn eval_subscript<'a, V: Sealed>(
    input: &[Item<'a, V>],
    subscript: &Subscript,
    out: &mut Vec<Item<'a, V>>,
) -> Result<(), ExecError> {
    let fail = |out: &mut Vec<Item<'a, V>>, e: ExecError| {
        out.clear();
        out.extend_from_slice(input);
        Err(e)
    };
    for item in input {
        let elements = match item {
            Item::Node(node) => match node.view() {
                View::Array(elements) => elements,
                View::Null => continue,
                _ => return fail(out, ExecError::NotArray(go_type_name(item))),
            },
            other => return fail(out, ExecError::NotArray(go_type_name(other))),
        };
        let len = elements.len() as i64;
        // (value, known) for start and end; `derived` marks the end of `[i]`.
        let (start, end, derived, step) = match *subscript {
            Subscript::Index(i) => {
                let i = i.unwrap_or(0);
                (Some(i), Some(i.wrapping_add(1)), true, None)
            }
            Subscript::Slice { start, end, step } => (start, end, false, step),
        };
        let mut a = start.unwrap_or(0);
        if a < 0 {
            a = a.wrapping_add(len);
        }
        let mut b = end.unwrap_or(len);
        if b < 0 || (b == 0 && derived) {
            b = b.wrapping_add(len);
        }
        if a == b {
            // Zero elements requested: kubectl (client-go's `evalArray` up to the v1.32 line
            // at least) returns what it has so far and ignores the remaining inputs, so
            // `{[*][*]}` over `[[1],[],[2]]` prints `1`. Newer client-go goes on (its
            // TestEmptyArrayDoesNotStopFollowingInputs); we print what kubectl prints.
            return Ok(());
        }
        if a >= len || a < 0 {
            return fail(
                out,
                ExecError::OutOfBounds {
                    index: a,
                    length: elements.len(),
                },
            );
        }
        if b > len || b < 0 {
            return fail(
                out,
                ExecError::OutOfBounds {
                    index: b.wrapping_sub(1),
                    length: elements.len(),
                },
            );
        }
        if a > b {
            return fail(out, ExecError::StartAfterEnd { start: a, end: b });
        }
        let step = match step {
            Some(s) if s <= 0 => return fail(out, ExecError::NonPositiveStep),
            Some(s) => usize::try_from(s).unwrap_or(usize::MAX),
            None => 1,
        };
        // ok: 0 <= a < b <= len was checked above.
        let range = &elements[a as usize..b as usize];
        out.extend(range.iter().step_by(step).map(Item::Node));
    }
    Ok(())
}

/// The Go type name client-go prints in "is not array or slice" errors.
fn go_type_name<V: Sealed>(item: &Item<'_, V>) -> String {
    let name = match item {
        Item::Node(node) => match node.view() {
            View::Null => "<nil>",
            View::Bool(_) => "bool",
            View::Int(_) => "int64",
            View::Float(_) => "float64",
            View::Str(_) => "string",
            View::Array(_) => "[]interface {}",
            View::Object(_) => "map[string]interface {}",
        },
        Item::Text(_) => "string",
        Item::Int(_) => "int",
        Item::Float(_) => "float64",
        Item::Bool(_) => "bool",
        Item::Byte(_) => "uint8",
        Item::Invalid => "<invalid reflect.Value>",
    };
    name.to_string()
}

/// Go's `%v` of an item, for the "cannot be filtered" error.
fn go_v_item<V: Sealed>(item: &Item<'_, V>) -> String {
    let mut out = Vec::new();
    match item {
        Item::Node(node) => print::go_v(&mut out, *node),
        Item::Invalid => out.extend_from_slice(b"<invalid reflect.Value>"),
        other => item_text(&mut out, other),
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// client-go's text output of one result: strings raw, scalars with `%v`, maps and arrays as
/// compact JSON.
fn item_text<V: Sealed>(out: &mut Vec<u8>, item: &Item<'_, V>) {
    match item {
        Item::Node(node) => match node.view() {
            View::Null => out.extend_from_slice(b"null"),
            View::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
            View::Int(i) => print::write_int(out, i),
            View::Float(f) => print::go_float_v(out, f),
            View::Str(s) => out.extend_from_slice(s.as_bytes()),
            View::Array(_) | View::Object(_) => print::write_json(out, *node, None),
        },
        Item::Text(bytes) => out.extend_from_slice(bytes),
        Item::Int(i) => print::write_int(out, *i),
        Item::Float(f) => print::go_float_v(out, *f),
        Item::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Item::Byte(b) => print::write_int(out, i64::from(*b)),
        Item::Invalid => out.extend_from_slice(b"<no value>"),
    }
}

/// An item as JSON, for `json_output`.
fn item_json<V: Sealed>(out: &mut Vec<u8>, item: &Item<'_, V>, indent: Option<usize>) {
    match item {
        Item::Node(node) => print::write_json(out, *node, indent),
        Item::Text(bytes) => print::json_string(out, bytes),
        Item::Int(i) => print::write_int(out, *i),
        Item::Float(f) => print::go_float_json(out, *f),
        Item::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Item::Byte(b) => print::write_int(out, i64::from(*b)),
        Item::Invalid => out.extend_from_slice(b"null"),
    }
}

/// Go template comparison kinds (`text/template`'s `basicKind`).
enum Basic<'a> {
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(&'a [u8]),
}

fn basic<'a, V: Sealed>(item: Item<'a, V>) -> Result<Basic<'a>, ExecError> {
    Ok(match item {
        Item::Node(node) => match node.view() {
            View::Bool(b) => Basic::Bool(b),
            View::Int(i) => Basic::Int(i),
            View::Float(f) => Basic::Float(f),
            View::Str(s) => Basic::Str(s.as_bytes()),
            View::Null | View::Array(_) | View::Object(_) => {
                return Err(ExecError::InvalidComparison);
            }
        },
        Item::Text(bytes) => Basic::Str(bytes),
        Item::Int(i) => Basic::Int(i),
        Item::Float(f) => Basic::Float(f),
        Item::Bool(b) => Basic::Bool(b),
        Item::Byte(b) => Basic::Uint(u64::from(b)),
        Item::Invalid => return Err(ExecError::InvalidComparison),
    })
}

fn equal(a: &Basic<'_>, b: &Basic<'_>) -> Result<bool, ExecError> {
    Ok(match (a, b) {
        (Basic::Bool(x), Basic::Bool(y)) => x == y,
        (Basic::Int(x), Basic::Int(y)) => x == y,
        (Basic::Uint(x), Basic::Uint(y)) => x == y,
        (Basic::Float(x), Basic::Float(y)) => x == y,
        (Basic::Str(x), Basic::Str(y)) => x == y,
        (Basic::Int(x), Basic::Uint(y)) => *x >= 0 && x.unsigned_abs() == *y,
        (Basic::Uint(x), Basic::Int(y)) => *y >= 0 && *x == y.unsigned_abs(),
        _ => return Err(ExecError::IncompatibleComparison),
    })
}

fn less(a: &Basic<'_>, b: &Basic<'_>) -> Result<bool, ExecError> {
    Ok(match (a, b) {
        (Basic::Bool(_), Basic::Bool(_)) => return Err(ExecError::InvalidComparison),
        (Basic::Int(x), Basic::Int(y)) => x < y,
        (Basic::Uint(x), Basic::Uint(y)) => x < y,
        (Basic::Float(x), Basic::Float(y)) => x < y,
        (Basic::Str(x), Basic::Str(y)) => x < y,
        (Basic::Int(x), Basic::Uint(y)) => *x < 0 || x.unsigned_abs() < *y,
        (Basic::Uint(x), Basic::Int(y)) => *y >= 0 && *x < y.unsigned_abs(),
        _ => return Err(ExecError::IncompatibleComparison),
    })
}

/// client-go's filter comparison (Go template `eq`, `lt`, ... semantics and errors).
fn compare<V: Sealed>(
    op: &FilterOp,
    left: Item<'_, V>,
    right: Item<'_, V>,
) -> Result<bool, ExecError> {
    if let FilterOp::Other(op) = op {
        return Err(ExecError::UnknownOperator(op.clone()));
    }
    let a = basic(left)?;
    let b = basic(right)?;
    match op {
        FilterOp::Eq => equal(&a, &b),
        FilterOp::Ne => equal(&a, &b).map(|e| !e),
        FilterOp::Lt => less(&a, &b),
        FilterOp::Le => Ok(less(&a, &b)? || equal(&a, &b)?),
        FilterOp::Gt => Ok(!(less(&a, &b)? || equal(&a, &b)?)),
        FilterOp::Ge => less(&a, &b).map(|l| !l),
        FilterOp::Exists | FilterOp::Other(_) => Ok(true),
    }
}
