//! `kube-jsonpath`: run a kubectl JSONPath template on a JSON or YAML document.
//!
//! ```text
//! kube-jsonpath [--allow-missing-keys] [--json-output] [--] TEMPLATE [FILE]
//! ```
//!
//! Reads one document from FILE (or standard input when FILE is absent or `-`), writes the
//! result to standard output exactly as `kubectl -o jsonpath=TEMPLATE` would (no newline is
//! added), and exits with 0. Errors go to standard error with exit status 1; usage errors exit
//! with 2.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use kube_jsonpath::{Document, JsonPath};

const USAGE: &str = "\
usage: kube-jsonpath [--allow-missing-keys] [--json-output] [--] TEMPLATE [FILE]

Runs a kubectl JSONPath template (as in `kubectl get -o jsonpath=TEMPLATE`) on one JSON or
YAML document read from FILE, or from standard input when FILE is absent or `-`.

options:
  --allow-missing-keys  print nothing for missing keys instead of failing
                        (kubectl's --allow-missing-template-keys)
  --json-output         print results as JSON arrays, like -o jsonpath-as-json
  -h, --help            show this help
  -V, --version         show the version
";

struct Args {
    allow_missing_keys: bool,
    json_output: bool,
    template: String,
    file: Option<String>,
}

enum Parsed {
    Run(Args),
    Exit(ExitCode),
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut allow_missing_keys = false;
    let mut json_output = false;
    let mut positional = Vec::new();
    let mut options_done = false;
    for arg in args {
        if options_done || !arg.starts_with('-') || arg == "-" {
            positional.push(arg);
            continue;
        }
        match arg.as_str() {
            "--" => options_done = true,
            "--allow-missing-keys" => allow_missing_keys = true,
            "--json-output" => json_output = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            "-V" | "--version" => {
                println!("kube-jsonpath {}", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(ExitCode::SUCCESS));
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    let mut positional = positional.into_iter();
    let template = positional.next().ok_or("missing TEMPLATE")?;
    let file = positional.next().filter(|f| f != "-");
    if let Some(extra) = positional.next() {
        return Err(format!("unexpected argument {extra}"));
    }
    Ok(Parsed::Run(Args {
        allow_missing_keys,
        json_output,
        template,
        file,
    }))
}

/// JSON first (exact number handling); YAML for anything that is not JSON.
fn read_document(text: &str) -> Result<Document, String> {
    match Document::from_json_str(text) {
        Ok(doc) => Ok(doc),
        Err(json_err) => {
            let looks_like_json = text.trim_start().starts_with(['{', '[']);
            match Document::from_yaml_str(text) {
                Ok(doc) => Ok(doc),
                Err(_) if looks_like_json => Err(json_err.to_string()),
                Err(yaml_err) => Err(yaml_err.to_string()),
            }
        }
    }
}

fn run(args: Args) -> Result<Vec<u8>, String> {
    let jsonpath = JsonPath::parse(&args.template)
        .map_err(|e| format!("error parsing jsonpath {}, {e}", args.template))?
        .allow_missing_keys(args.allow_missing_keys)
        .json_output(args.json_output);
    let mut input = Vec::new();
    match &args.file {
        Some(path) => {
            input = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        }
        None => {
            io::stdin()
                .read_to_end(&mut input)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
        }
    }
    // kubectl reads invalid UTF-8 as U+FFFD.
    let text = String::from_utf8_lossy(&input);
    let document = read_document(&text)?;
    jsonpath.render_to_vec(&document).map_err(|e| {
        format!(
            "error executing jsonpath {:?}: Error executing template: {e}",
            args.template
        )
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Parsed::Run(args)) => args,
        Ok(Parsed::Exit(code)) => return code,
        Err(message) => {
            eprintln!("kube-jsonpath: {message}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(output) => {
            let mut stdout = io::stdout().lock();
            match stdout.write_all(&output).and_then(|()| stdout.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write output: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
