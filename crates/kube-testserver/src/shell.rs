//! A tiny built-in shell for `kubectl exec` against the simulated kubelet.
//!
//! It knows `echo [-n]`, `cat` (stdin to stdout), `env`, `hostname`, `date [+%s]`, `sleep N`,
//! `exit [N]`, `true`, `false`, `pwd`, `stty size`, and `sh`/`ash` (`-c SCRIPT`, or an
//! interactive loop reading lines from stdin). Scripts are split on `;`, `&&`, `||` and
//! newlines, with `'...'`/`"..."` quoting, `\` escapes, `#` comments and `$?`/`$NAME`/`${NAME}`
//! expansion. `/bin/echo` and friends resolve by basename.
//!
//! The shell is independent of the transport: it reads a [`Stdin`], writes to an [`Output`],
//! sees terminal sizes on a watch channel and returns an [`Outcome`]. With a TTY, [`Stdin`] is
//! a minimal line discipline (echo, erase, Ctrl-C, Ctrl-D) and output `\n` becomes `\r\n`.
//! Dropping the future stops the command (a client that disconnects ends `sleep` and `cat`).

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, watch};

/// The longest line the TTY line discipline keeps (Linux N_TTY's 4095).
const MAX_LINE: usize = 4095;
/// The most input `read_line` buffers while waiting for a newline.
const MAX_PENDING: usize = 64 * 1024;

/// Which output stream a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error (merged into stdout with a TTY).
    Stderr,
}

/// A terminal size, as the resize channel sends it.
pub use kube_apimachinery::channel::TerminalSize;

/// Where a process writes: a channel of `(stream, bytes)` chunks.
#[derive(Debug, Clone)]
pub struct Output {
    tx: mpsc::Sender<(Stream, Bytes)>,
    tty: bool,
}

impl Output {
    /// Writes go to `tx`; with `tty`, stderr goes to stdout and `\n` becomes `\r\n`.
    pub fn new(tx: mpsc::Sender<(Stream, Bytes)>, tty: bool) -> Output {
        Output { tx, tty }
    }

    /// Writes `data` to `stream` (a reader that went away is ignored: the process is being
    /// stopped anyway).
    pub async fn write(&self, stream: Stream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.tty {
            let mut converted = Vec::with_capacity(data.len() + 8);
            for &byte in data {
                if byte == b'\n' {
                    converted.push(b'\r');
                }
                converted.push(byte);
            }
            self.raw(Stream::Stdout, converted).await;
        } else {
            self.raw(stream, data.to_vec()).await;
        }
    }

    /// Writes bytes as they are (terminal echo).
    async fn raw(&self, stream: Stream, data: Vec<u8>) {
        if !data.is_empty() {
            let _ = self.tx.send((stream, Bytes::from(data))).await;
        }
    }

    async fn out(&self, text: &str) {
        self.write(Stream::Stdout, text.as_bytes()).await;
    }

    async fn err(&self, text: &str) {
        self.write(Stream::Stderr, text.as_bytes()).await;
    }
}

/// What a read of [`Stdin`] gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// Some bytes (with a TTY: complete lines, or a partial line flushed by Ctrl-D).
    Data(Vec<u8>),
    /// End of input (stdin closed, or Ctrl-D on an empty line).
    Eof,
    /// Ctrl-C (TTY only).
    Interrupt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Started,
    Csi,
}

/// A process's standard input: the raw chunks the client sends, through a minimal line
/// discipline when there is a TTY.
#[derive(Debug)]
pub struct Stdin {
    raw: Option<mpsc::Receiver<Bytes>>,
    tty: bool,
    echo: Output,
    line: String,
    cooked: VecDeque<u8>,
    eof_pending: bool,
    interrupt_pending: bool,
    escape: Escape,
}

impl Stdin {
    /// Reads `raw` (`None`: no stdin, at EOF from the start); with `tty`, typed input is
    /// echoed to `echo`.
    pub fn new(raw: Option<mpsc::Receiver<Bytes>>, tty: bool, echo: Output) -> Stdin {
        Stdin {
            raw,
            tty,
            echo,
            line: String::new(),
            cooked: VecDeque::new(),
            eof_pending: false,
            interrupt_pending: false,
            escape: Escape::None,
        }
    }

    /// Pulls one raw chunk; `false` when the raw input is closed.
    async fn pull(&mut self) -> bool {
        let Some(raw) = self.raw.as_mut() else {
            return false;
        };
        match raw.recv().await {
            Some(chunk) => {
                if self.tty {
                    let echo = self.discipline(&chunk);
                    self.echo.raw(Stream::Stdout, echo).await;
                } else {
                    self.cooked.extend(chunk.iter());
                }
                true
            }
            None => {
                self.raw = None;
                false
            }
        }
    }

    /// The line discipline: updates the edit line and the cooked queue, returns the echo.
    fn discipline(&mut self, chunk: &[u8]) -> Vec<u8> {
        let mut echo = Vec::new();
        let text = String::from_utf8_lossy(chunk);
        for ch in text.chars() {
            match self.escape {
                Escape::Started => {
                    self.escape = if ch == '[' { Escape::Csi } else { Escape::None };
                    continue;
                }
                Escape::Csi => {
                    if ('\u{40}'..='\u{7e}').contains(&ch) {
                        self.escape = Escape::None;
                    }
                    continue;
                }
                Escape::None => {}
            }
            match ch {
                '\r' | '\n' => {
                    echo.extend_from_slice(b"\r\n");
                    self.line.push('\n');
                    self.cooked.extend(std::mem::take(&mut self.line).bytes());
                }
                '\u{7f}' | '\u{8}' => {
                    let erased = self.line.pop().is_some();
                    echo.extend_from_slice(if erased { b"\x08 \x08" } else { b"" });
                }
                '\u{3}' => {
                    echo.extend_from_slice(b"^C\r\n");
                    self.line.clear();
                    self.cooked.clear();
                    self.eof_pending = false;
                    self.interrupt_pending = true;
                }
                '\u{4}' => {
                    if self.line.is_empty() {
                        self.eof_pending = true;
                    } else {
                        self.cooked.extend(std::mem::take(&mut self.line).bytes());
                    }
                }
                '\u{1b}' => self.escape = Escape::Started,
                // Linux's N_TTY keeps at most 4095 characters of a line; the rest is dropped.
                c if (c == '\t' || !c.is_control()) && self.line.len() < MAX_LINE => {
                    let mut buffer = [0u8; 4];
                    echo.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
                    self.line.push(c);
                }
                _ => {}
            }
        }
        echo
    }

    /// The next input: data, end of input or an interrupt.
    pub async fn read(&mut self) -> Input {
        loop {
            if self.interrupt_pending {
                self.interrupt_pending = false;
                return Input::Interrupt;
            }
            if !self.cooked.is_empty() {
                return Input::Data(self.cooked.drain(..).collect());
            }
            if self.eof_pending {
                self.eof_pending = false;
                return Input::Eof;
            }
            if !self.pull().await {
                return Input::Eof;
            }
        }
    }

    /// The next line (with its `\n`, or without at the end of input), end of input or an
    /// interrupt.
    pub async fn read_line(&mut self) -> Input {
        loop {
            if self.interrupt_pending {
                self.interrupt_pending = false;
                return Input::Interrupt;
            }
            if let Some(end) = self.cooked.iter().position(|&b| b == b'\n') {
                return Input::Data(self.cooked.drain(..=end).collect());
            }
            // A "line" without a newline is handed over in pieces rather than buffered
            // without bound.
            if self.cooked.len() >= MAX_PENDING {
                return Input::Data(self.cooked.drain(..MAX_PENDING).collect());
            }
            let at_end = self.eof_pending || self.raw.is_none();
            if at_end {
                if !self.cooked.is_empty() {
                    return Input::Data(self.cooked.drain(..).collect());
                }
                self.eof_pending = false;
                return Input::Eof;
            }
            self.pull().await;
        }
    }

    /// Resolves on Ctrl-C (never without a TTY), keeping typed-ahead input for later reads.
    pub async fn interrupted(&mut self) {
        if !self.tty {
            return std::future::pending().await;
        }
        loop {
            if self.interrupt_pending {
                self.interrupt_pending = false;
                return;
            }
            if !self.pull().await {
                return std::future::pending().await;
            }
        }
    }
}

/// A process's standard streams and terminal.
#[derive(Debug)]
pub struct ProcessIo {
    /// Standard input.
    pub stdin: Stdin,
    /// Standard output and error.
    pub output: Output,
    /// The latest terminal size (`None` before the first resize).
    pub resize: watch::Receiver<Option<TerminalSize>>,
    /// Whether the process has a TTY.
    pub tty: bool,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It ran and exited with this code.
    Exited(i32),
    /// The executable does not exist (exec'd directly, without a shell).
    NotFound(String),
}

/// Exit code of a command interrupted by Ctrl-C (128 + SIGINT).
const INTERRUPTED: i32 = 130;

const BUILTINS: &[&str] = &[
    "echo", "cat", "env", "hostname", "date", "sleep", "exit", "true", "false", "pwd", "stty",
    "sh", "ash",
];

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Runs `command` (an argv, exec'd without a shell) in a container whose hostname is
/// `hostname`.
pub async fn exec(command: &[String], hostname: &str, io: ProcessIo) -> Outcome {
    let Some(program) = command.first() else {
        return Outcome::Exited(0);
    };
    if !BUILTINS.contains(&basename(program)) {
        return Outcome::NotFound(program.clone());
    }
    let mut shell = Shell {
        hostname: hostname.to_string(),
        last: 0,
        io,
    };
    match shell.run(command).await {
        Flow::Next(code) | Flow::Exit(code) => Outcome::Exited(code),
    }
}

/// Whether a command ran on or asked the shell to exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Next(i32),
    Exit(i32),
}

struct Shell {
    hostname: String,
    last: i32,
    io: ProcessIo,
}

impl Shell {
    fn env(&self) -> Vec<(String, String)> {
        let mut vars = vec![
            (
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
            ("HOSTNAME".to_string(), self.hostname.clone()),
            ("HOME".to_string(), "/root".to_string()),
        ];
        if self.io.tty {
            vars.push(("TERM".to_string(), "xterm".to_string()));
        }
        vars.extend([
            (
                "KUBERNETES_SERVICE_HOST".to_string(),
                "10.96.0.1".to_string(),
            ),
            ("KUBERNETES_SERVICE_PORT".to_string(), "443".to_string()),
            ("PWD".to_string(), "/".to_string()),
        ]);
        vars
    }

    fn variable(&self, name: &str) -> String {
        if name == "?" {
            return self.last.to_string();
        }
        self.env()
            .into_iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
            .unwrap_or_default()
    }

    /// Runs one command (argv already expanded).
    async fn run(&mut self, argv: &[String]) -> Flow {
        let Some(program) = argv.first() else {
            return Flow::Next(self.last);
        };
        let args = &argv[1..];
        let out = self.io.output.clone();
        let code = match basename(program) {
            "echo" => {
                let (newline, words) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut text = words.join(" ");
                if newline {
                    text.push('\n');
                }
                out.out(&text).await;
                0
            }
            "cat" => self.cat(args).await,
            "env" => {
                let text: String = self
                    .env()
                    .iter()
                    .map(|(key, value)| format!("{key}={value}\n"))
                    .collect();
                out.out(&text).await;
                0
            }
            "hostname" => {
                out.out(&format!("{}\n", self.hostname)).await;
                0
            }
            "date" => {
                let now = jiff::Timestamp::now();
                let text = match args.first().map(String::as_str) {
                    Some("+%s") => now.as_second().to_string(),
                    _ => now.strftime("%a %b %e %H:%M:%S UTC %Y").to_string(),
                };
                out.out(&format!("{text}\n")).await;
                0
            }
            "sleep" => self.sleep(args).await,
            "exit" => {
                return match args.first() {
                    None => Flow::Exit(self.last),
                    Some(text) => match text.parse::<i64>() {
                        Ok(code) => Flow::Exit(code.rem_euclid(256) as i32),
                        Err(_) => {
                            out.err(&format!("sh: exit: Illegal number: {text}\n"))
                                .await;
                            Flow::Exit(2)
                        }
                    },
                };
            }
            "true" => 0,
            "false" => 1,
            "pwd" => {
                out.out("/\n").await;
                0
            }
            "stty" => self.stty(args).await,
            "sh" | "ash" => return self.sh(args).await,
            other => {
                out.err(&format!("sh: {other}: not found\n")).await;
                127
            }
        };
        Flow::Next(code)
    }

    async fn cat(&mut self, args: &[String]) -> i32 {
        if let Some(file) = args.iter().find(|a| a.as_str() != "-") {
            self.io
                .output
                .err(&format!(
                    "cat: can't open '{file}': No such file or directory\n"
                ))
                .await;
            return 1;
        }
        loop {
            match self.io.stdin.read().await {
                Input::Data(data) => self.io.output.write(Stream::Stdout, &data).await,
                Input::Eof => return 0,
                Input::Interrupt => return INTERRUPTED,
            }
        }
    }

    async fn sleep(&mut self, args: &[String]) -> i32 {
        let Some(text) = args.first() else {
            self.io.output.err("sleep: missing operand\n").await;
            return 1;
        };
        let seconds = match text.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => s.min(1e9),
            _ => {
                self.io
                    .output
                    .err(&format!("sleep: invalid number '{text}'\n"))
                    .await;
                return 1;
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => 0,
            _ = self.io.stdin.interrupted() => INTERRUPTED,
        }
    }

    async fn stty(&mut self, args: &[String]) -> i32 {
        if !self.io.tty {
            self.io
                .output
                .err("stty: standard input: Not a tty\n")
                .await;
            return 1;
        }
        if args.first().map(String::as_str) == Some("size") {
            let size = *self.io.resize.borrow();
            let (rows, cols) = size.map_or((24, 80), |s| (s.height, s.width));
            self.io.output.out(&format!("{rows} {cols}\n")).await;
        }
        0
    }

    async fn sh(&mut self, args: &[String]) -> Flow {
        match args.first().map(String::as_str) {
            Some("-c") => match args.get(1) {
                Some(script) => {
                    let flow = Box::pin(self.script(script)).await;
                    Flow::Next(match flow {
                        Flow::Next(code) | Flow::Exit(code) => code,
                    })
                }
                None => {
                    self.io.output.err("sh: -c requires an argument\n").await;
                    Flow::Next(2)
                }
            },
            Some(file) => {
                let message = format!("sh: can't open '{file}': No such file or directory\n");
                self.io.output.err(&message).await;
                Flow::Next(2)
            }
            None => Flow::Next(Box::pin(self.interactive()).await),
        }
    }

    /// Reads and runs lines until `exit` or the end of input.
    async fn interactive(&mut self) -> i32 {
        loop {
            if self.io.tty {
                self.io.output.raw(Stream::Stdout, b"/ # ".to_vec()).await;
            }
            match self.io.stdin.read_line().await {
                Input::Data(line) => {
                    let line = String::from_utf8_lossy(&line).into_owned();
                    if let Flow::Exit(code) = Box::pin(self.script(&line)).await {
                        return code;
                    }
                }
                Input::Eof => return self.last,
                Input::Interrupt => self.last = INTERRUPTED,
            }
        }
    }

    /// Runs a script: commands joined by `;`, `&&`, `||` and newlines.
    async fn script(&mut self, text: &str) -> Flow {
        let items = match tokenize(text) {
            Ok(items) => items,
            Err(message) => {
                self.io
                    .output
                    .err(&format!("sh: syntax error: {message}\n"))
                    .await;
                self.last = 2;
                return Flow::Next(2);
            }
        };
        let mut connector = Op::Seq;
        let mut words: Vec<Vec<Part>> = Vec::new();
        let mut items = items.into_iter().peekable();
        loop {
            let next = items.next();
            match next {
                Some(Item::Word(word)) => {
                    words.push(word);
                    continue;
                }
                Some(Item::Op(_)) | None => {}
            }
            let run = match connector {
                Op::Seq => true,
                Op::And => self.last == 0,
                Op::Or => self.last != 0,
            };
            if run && !words.is_empty() {
                let argv: Vec<String> = words.iter().map(|w| self.expand(w)).collect();
                match Box::pin(self.run(&argv)).await {
                    Flow::Next(code) => self.last = code,
                    Flow::Exit(code) => {
                        self.last = code;
                        return Flow::Exit(code);
                    }
                }
            }
            words.clear();
            match next {
                Some(Item::Op(op)) => connector = op,
                _ => return Flow::Next(self.last),
            }
        }
    }

    fn expand(&self, word: &[Part]) -> String {
        word.iter()
            .map(|part| match part {
                Part::Literal(text) => text.clone(),
                Part::Variable(name) => self.variable(name),
            })
            .collect()
    }
}

/// A command connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Seq,
    And,
    Or,
}

/// A piece of a word: literal text or a variable expanded when the command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Variable(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Word(Vec<Part>),
    Op(Op),
}

#[derive(Default)]
struct WordBuilder {
    parts: Vec<Part>,
    literal: String,
    started: bool,
}

impl WordBuilder {
    fn push(&mut self, ch: char) {
        self.literal.push(ch);
        self.started = true;
    }

    fn variable(&mut self, name: String) {
        if !self.literal.is_empty() {
            self.parts
                .push(Part::Literal(std::mem::take(&mut self.literal)));
        }
        self.parts.push(Part::Variable(name));
        self.started = true;
    }

    fn finish(&mut self, items: &mut Vec<Item>) {
        if !self.literal.is_empty() {
            self.parts
                .push(Part::Literal(std::mem::take(&mut self.literal)));
        }
        if self.started {
            items.push(Item::Word(std::mem::take(&mut self.parts)));
        }
        self.started = false;
    }
}

/// Reads a `$` expansion after the `$`; `None` for a lone `$`.
fn variable_name(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<String> {
    match chars.peek().copied() {
        Some('?') => {
            chars.next();
            Some("?".to_string())
        }
        Some('{') => {
            chars.next();
            let mut name = String::new();
            for ch in chars.by_ref() {
                if ch == '}' {
                    break;
                }
                name.push(ch);
            }
            Some(name)
        }
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {
            let mut name = String::new();
            while let Some(&c) = chars.peek() {
                if c == '_' || c.is_ascii_alphanumeric() {
                    name.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            Some(name)
        }
        _ => None,
    }
}

fn tokenize(text: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut word = WordBuilder::default();
    let mut chars = text.chars().peekable();
    while let Some(ch) = chars.next() {
        match ch {
            ' ' | '\t' | '\r' => word.finish(&mut items),
            '\n' | ';' => {
                word.finish(&mut items);
                items.push(Item::Op(Op::Seq));
            }
            '&' | '|' => {
                word.finish(&mut items);
                if chars.peek() == Some(&ch) {
                    chars.next();
                    items.push(Item::Op(if ch == '&' { Op::And } else { Op::Or }));
                } else if ch == '|' {
                    return Err("pipes are not supported by this shell".into());
                } else {
                    return Err("background jobs are not supported by this shell".into());
                }
            }
            '#' if !word.started => {
                for next in chars.by_ref() {
                    if next == '\n' {
                        items.push(Item::Op(Op::Seq));
                        break;
                    }
                }
            }
            '\'' => {
                word.started = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '"' => {
                word.started = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated quoted string".into()),
                        },
                        Some('$') => match variable_name(&mut chars) {
                            Some(name) => word.variable(name),
                            None => word.push('$'),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated quoted string".into()),
                    }
                }
            }
            '\\' => {
                if let Some(c) = chars.next()
                    && c != '\n'
                {
                    word.push(c);
                }
            }
            '$' => match variable_name(&mut chars) {
                Some(name) => word.variable(name),
                None => word.push('$'),
            },
            c => word.push(c),
        }
    }
    word.finish(&mut items);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Harness {
        stdin: Option<mpsc::Sender<Bytes>>,
        resize: watch::Sender<Option<TerminalSize>>,
        output: mpsc::Receiver<(Stream, Bytes)>,
    }

    fn make_io(tty: bool, with_stdin: bool) -> (ProcessIo, Harness) {
        let (out_tx, out_rx) = mpsc::channel(64);
        let output = Output::new(out_tx, tty);
        let (in_tx, in_rx) = mpsc::channel(16);
        let (resize_tx, resize_rx) = watch::channel(None);
        let io = ProcessIo {
            stdin: Stdin::new(with_stdin.then_some(in_rx), tty, output.clone()),
            output,
            resize: resize_rx,
            tty,
        };
        let harness = Harness {
            stdin: with_stdin.then_some(in_tx),
            resize: resize_tx,
            output: out_rx,
        };
        (io, harness)
    }

    fn argv(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    /// Runs a command without stdin and collects (stdout, stderr, outcome).
    async fn run(words: &[&str]) -> (String, String, Outcome) {
        let (io, mut harness) = make_io(false, false);
        let outcome = exec(&argv(words), "pod-1", io).await;
        let (mut out, mut err) = (String::new(), String::new());
        while let Ok((stream, data)) = harness.output.try_recv() {
            let text = String::from_utf8_lossy(&data);
            match stream {
                Stream::Stdout => out.push_str(&text),
                Stream::Stderr => err.push_str(&text),
            }
        }
        (out, err, outcome)
    }

    async fn collect(output: &mut mpsc::Receiver<(Stream, Bytes)>) -> String {
        let mut text = String::new();
        while let Ok((_, data)) = output.try_recv() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        text
    }

    #[tokio::test]
    async fn builtins() {
        assert_eq!(
            run(&["echo", "hello", "world"]).await,
            ("hello world\n".into(), String::new(), Outcome::Exited(0))
        );
        assert_eq!(run(&["/bin/echo", "-n", "x"]).await.0, "x");
        assert_eq!(run(&["hostname"]).await.0, "pod-1\n");
        assert!(run(&["env"]).await.0.contains("HOSTNAME=pod-1\n"));
        assert_eq!(run(&["false"]).await.2, Outcome::Exited(1));
        assert_eq!(run(&["pwd"]).await.0, "/\n");
        let seconds: i64 = run(&["date", "+%s"]).await.0.trim().parse().unwrap();
        assert!(seconds > 1_700_000_000);
        assert_eq!(
            run(&["nosuch", "x"]).await.2,
            Outcome::NotFound("nosuch".into())
        );
        assert_eq!(run(&["sleep", "0.01"]).await.2, Outcome::Exited(0));
        assert_eq!(run(&["sleep", "x"]).await.2, Outcome::Exited(1));
        assert_eq!(run(&["stty", "size"]).await.2, Outcome::Exited(1));
    }

    #[tokio::test]
    async fn scripts() {
        assert_eq!(run(&["sh", "-c", "exit 3"]).await.2, Outcome::Exited(3));
        assert_eq!(
            run(&["sh", "-c", "false && echo no || echo yes; echo $?"])
                .await
                .0,
            "yes\n0\n"
        );
        assert_eq!(
            run(&["sh", "-c", "false; echo \"status $?\" 'and $? literal'"])
                .await
                .0,
            "status 1 and $? literal\n"
        );
        assert_eq!(
            run(&["/bin/sh", "-c", "echo $HOSTNAME ${HOME}; exit 300"]).await,
            ("pod-1 /root\n".into(), String::new(), Outcome::Exited(44))
        );
        let (_, err, outcome) = run(&["sh", "-c", "foo bar"]).await;
        assert_eq!(
            (err.as_str(), outcome),
            ("sh: foo: not found\n", Outcome::Exited(127))
        );
        assert_eq!(run(&["sh", "-c", "echo 'open"]).await.2, Outcome::Exited(2));
        assert_eq!(
            run(&["sh", "-c", "sh -c 'exit 4'; echo $? # comment"])
                .await
                .0,
            "4\n"
        );
        assert_eq!(
            run(&["sh", "-c", "true && exit 5; echo unreachable"]).await,
            (String::new(), String::new(), Outcome::Exited(5))
        );
    }

    #[tokio::test]
    async fn cat_copies_stdin_until_eof() {
        let (io, mut harness) = make_io(false, true);
        let stdin = harness.stdin.take().unwrap();
        let task = tokio::spawn(async move { exec(&argv(&["cat"]), "p", io).await });
        stdin.send(Bytes::from_static(b"abc\n")).await.unwrap();
        let (stream, data) = harness.output.recv().await.unwrap();
        assert_eq!((stream, &data[..]), (Stream::Stdout, &b"abc\n"[..]));
        drop(stdin);
        assert_eq!(task.await.unwrap(), Outcome::Exited(0));
    }

    #[tokio::test]
    async fn interactive_sh_reads_lines() {
        let (io, mut harness) = make_io(false, true);
        let stdin = harness.stdin.take().unwrap();
        stdin
            .send(Bytes::from_static(
                b"echo one\necho two; exit 7\necho never\n",
            ))
            .await
            .unwrap();
        let outcome = exec(&argv(&["sh"]), "p", io).await;
        assert_eq!(outcome, Outcome::Exited(7));
        assert_eq!(collect(&mut harness.output).await, "one\ntwo\n");
    }

    async fn wait_for(
        output: &mut mpsc::Receiver<(Stream, Bytes)>,
        text: &mut String,
        needle: &str,
    ) {
        while !text.contains(needle) {
            let (_, data) = output.recv().await.unwrap();
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }

    #[tokio::test]
    async fn tty_line_discipline() {
        let (io, mut harness) = make_io(true, true);
        let stdin = harness.stdin.take().unwrap();
        harness
            .resize
            .send(Some(TerminalSize {
                width: 120,
                height: 40,
            }))
            .unwrap();
        let task = tokio::spawn(async move { exec(&argv(&["sh"]), "p", io).await });
        let mut text = String::new();
        // A typo erased, then the line runs.
        stdin
            .send(Bytes::from_static(b"stty sizz\x7fe\r"))
            .await
            .unwrap();
        wait_for(&mut harness.output, &mut text, "40 120\r\n").await;
        assert!(text.starts_with("/ # stty sizz\x08 \x08e\r\n"), "{text:?}");
        // Ctrl-C discards the line; Ctrl-D on an empty line ends the shell.
        stdin
            .send(Bytes::from_static(b"echo junk\x03"))
            .await
            .unwrap();
        wait_for(&mut harness.output, &mut text, "^C\r\n/ # ").await;
        stdin
            .send(Bytes::from_static(b"echo ok\r\x04"))
            .await
            .unwrap();
        let outcome = task.await.unwrap();
        text.push_str(&collect(&mut harness.output).await);
        assert!(text.ends_with("echo ok\r\nok\r\n/ # "), "{text:?}");
        assert!(!text.contains("junk\r\n"), "{text:?}");
        assert_eq!(outcome, Outcome::Exited(0));
    }

    #[tokio::test]
    async fn ctrl_c_interrupts_sleep_and_stty_defaults() {
        let (io, mut harness) = make_io(true, true);
        let stdin = harness.stdin.take().unwrap();
        let task = tokio::spawn(async move { exec(&argv(&["sleep", "100"]), "p", io).await });
        stdin.send(Bytes::from_static(b"\x03")).await.unwrap();
        assert_eq!(task.await.unwrap(), Outcome::Exited(130));

        let (io, mut harness) = make_io(true, false);
        assert_eq!(
            exec(&argv(&["stty", "size"]), "p", io).await,
            Outcome::Exited(0)
        );
        assert_eq!(collect(&mut harness.output).await, "24 80\r\n");
    }
}
