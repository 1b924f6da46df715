//! kubectl's JSONPath templates (`kubectl get -o jsonpath=...`) for Rust, with the same output
//! bytes as kubectl.
//!
//! This is not RFC 9535 JSONPath: it is the template dialect of client-go's
//! `k8s.io/client-go/util/jsonpath`, where text and `{...}` actions mix, `{range}`/`{end}` loop,
//! and results print the way kubectl prints them (strings raw, maps and arrays as Go's
//! `encoding/json`, floats as Go's `fmt`).
//!
//! ```
//! use kube_jsonpath::JsonPath;
//! use serde_json::json;
//!
//! let pods = json!({
//!     "kind": "List",
//!     "items": [
//!         {"metadata": {"name": "web-0"}, "status": {"phase": "Running"}},
//!         {"metadata": {"name": "web-1"}, "status": {"phase": "Pending"}},
//!     ]
//! });
//!
//! // Parse once, execute many times (a `JsonPath` is `Send + Sync`).
//! let names = JsonPath::parse("{.items[*].metadata.name}")?;
//! assert_eq!(names.render(&pods)?, "web-0 web-1");
//!
//! let table = JsonPath::parse(
//!     r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
//! )?;
//! assert_eq!(table.render(&pods)?, "web-0\tRunning\nweb-1\tPending\n");
//!
//! let running = JsonPath::parse(r#"{.items[?(@.status.phase=="Running")].metadata.name}"#)?;
//! let mut out = Vec::new();
//! running.execute(&mut out, &pods)?;
//! assert_eq!(out, b"web-0");
//!
//! // Errors use client-go's wording.
//! let err = JsonPath::parse("{.metadata.nope}")?.render(&pods).unwrap_err();
//! assert_eq!(err.to_string(), "metadata is not found");
//! # Ok::<(), kube_jsonpath::Error>(())
//! ```
//!
//! Inputs are [`serde_json::Value`], the order-preserving [`Document`] (JSON, YAML or any
//! `Serialize` type), or typed values through [`JsonPath::render_serialize`].
//!
//! The crate also ships the `kube-jsonpath` command line tool (feature `cli`, on by
//! default): `kube-jsonpath '{.metadata.name}' pod.yaml`.

mod ast;
mod error;
mod eval;
mod parser;
mod print;
mod value;

use std::fmt;
use std::io::Write;
use std::str::FromStr;

pub use ast::{Filter, FilterOp, Literal, Segment, Span, Step, StepKind, Subscript, Template};
pub use error::{Error, ExecError, ParseError, ParseErrorKind};
pub use value::{Document, JsonValue};

impl Template {
    /// Parses a template with client-go's rules.
    pub fn parse(text: &str) -> Result<Template, ParseError> {
        parser::parse(text)
    }
}

impl FromStr for Template {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Template::parse(text)
    }
}

/// A compiled template with its execution options.
///
/// Build it once with [`JsonPath::parse`] and execute it as many times as needed, from any
/// number of threads. Unlike client-go, executing a template that contains `{range}` does not
/// change it.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    template: Template,
    allow_missing_keys: bool,
    json_output: bool,
}

impl JsonPath {
    /// Parses a template. Missing keys are errors and output is text, as with client-go's
    /// defaults.
    pub fn parse(text: &str) -> Result<JsonPath, ParseError> {
        Ok(JsonPath::from_template(Template::parse(text)?))
    }

    /// Wraps an already parsed (or hand-built) template.
    pub fn from_template(template: Template) -> JsonPath {
        JsonPath {
            template,
            allow_missing_keys: false,
            json_output: false,
        }
    }

    /// When `true`, a missing field or map key yields nothing instead of the
    /// "`<key>` is not found" error (client-go's `AllowMissingKeys`; kubectl's
    /// `--allow-missing-template-keys`, which kubectl turns on by default).
    #[must_use]
    pub fn allow_missing_keys(mut self, allow: bool) -> JsonPath {
        self.allow_missing_keys = allow;
        self
    }

    /// When `true`, each group of results is printed as an indented JSON array followed by a
    /// newline, like `kubectl -o jsonpath-as-json=...` (client-go's `EnableJSONOutput`).
    #[must_use]
    pub fn json_output(mut self, enabled: bool) -> JsonPath {
        self.json_output = enabled;
        self
    }

    /// The parsed template.
    pub fn template(&self) -> &Template {
        &self.template
    }

    fn options(&self) -> eval::Options {
        eval::Options {
            allow_missing_keys: self.allow_missing_keys,
            json_output: self.json_output,
        }
    }

    /// Executes the template and appends the output to `out`.
    ///
    /// On error, `out` may hold part of the output; [`render_to_vec`](Self::render_to_vec)
    /// and [`execute`](Self::execute) produce nothing in that case.
    pub fn execute_into<V: JsonValue>(&self, out: &mut Vec<u8>, data: &V) -> Result<(), ExecError> {
        eval::execute(&self.template, data, self.options(), out)
    }

    /// Executes the template and returns the output bytes.
    pub fn render_to_vec<V: JsonValue>(&self, data: &V) -> Result<Vec<u8>, ExecError> {
        let mut out = Vec::new();
        self.execute_into(&mut out, data)?;
        Ok(out)
    }

    /// Executes the template and writes the output to `writer` in one `write_all`. Nothing is
    /// written if execution fails, as with kubectl.
    pub fn execute<V: JsonValue, W: Write + ?Sized>(
        &self,
        writer: &mut W,
        data: &V,
    ) -> Result<(), Error> {
        let out = self.render_to_vec(data)?;
        writer.write_all(&out)?;
        Ok(())
    }

    /// Executes the template and returns the output as a string. Output bytes that are not
    /// UTF-8 (only possible with escapes such as `{"\xff"}`) are replaced with U+FFFD.
    pub fn render<V: JsonValue>(&self, data: &V) -> Result<String, Error> {
        let out = self.render_to_vec(data)?;
        Ok(match String::from_utf8(out) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    /// Executes the template on any serializable value (for example a `k8s-openapi` `Pod`),
    /// converted through its JSON form like kubectl does for typed objects.
    pub fn execute_serialize<T: serde::Serialize + ?Sized, W: Write + ?Sized>(
        &self,
        writer: &mut W,
        data: &T,
    ) -> Result<(), Error> {
        let document = Document::from_serialize(data)?;
        self.execute(writer, &document)
    }

    /// [`render`](Self::render) for any serializable value.
    pub fn render_serialize<T: serde::Serialize + ?Sized>(
        &self,
        data: &T,
    ) -> Result<String, Error> {
        let document = Document::from_serialize(data)?;
        self.render(&document)
    }
}

impl FromStr for JsonPath {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        JsonPath::parse(text)
    }
}

impl fmt::Display for JsonPath {
    /// Prints the template (in a normalized form that parses back to the same tree).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.template.fmt(f)
    }
}

#[cfg(test)]
mod tests;

/// Compiles the README's Rust example as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
