//! Exec and attach: run a command in a container (or attach to its main process) over a
//! WebSocket, with stdin, stdout, stderr, a terminal and resizes.
//!
//! ```no_run
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_rest::exec::AttachParams;
//! use kube_rest::{Api, Client};
//!
//! # async fn run() -> Result<(), kube_rest::Error> {
//! let pods: Api<Pod> = Api::default_namespaced(Client::try_default()?);
//! let output = pods
//!     .exec("web-0", ["sh", "-c", "echo hello; exit 3"], &AttachParams::default())
//!     .await?
//!     .output()
//!     .await?;
//! assert_eq!(output.stdout, b"hello\n");
//! assert_eq!(output.status.code(), 3); // a non-zero exit is a result, not an error
//! # Ok(())
//! # }
//! ```
//!
//! The client offers `v5.channel.k8s.io`, `v4.channel.k8s.io` and `channel.k8s.io` and adapts
//! to what the server picks: with v5, shutting stdin down reaches the command as EOF; with
//! older protocols the command sees EOF only when the connection closes (client-go's WebSocket
//! executor offers v5 alone for that reason; we keep the older ones for commands without
//! stdin, and [`AttachedProcess::can_close_stdin`] tells which you got), and before v4 the exit
//! code is parsed from the server's error text.
//!
//! Read every pipe you take, concurrently (one task serves the whole connection: an unread
//! pipe stops the others once 64 KiB are waiting in it), or drop it.

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use tokio::io::AsyncReadExt as _;

use crate::api::Api;
use crate::channel::{
    self, ChannelProtocol, ChannelReader, ChannelSender, ChannelStreams, ChannelWriter, Incoming,
};
use crate::error::{Error, Status};

/// Options of [`Api::exec`] and [`Api::attach`] (client-go's `PodExecOptions` /
/// `PodAttachOptions`).
///
/// The default attaches stdout and stderr, without stdin and without a terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct AttachParams {
    /// The container; may be left out when the pod has one.
    pub container: Option<String>,
    /// Attach stdin.
    pub stdin: bool,
    /// Attach stdout.
    pub stdout: bool,
    /// Attach stderr (must be off with a terminal: a terminal merges it into stdout).
    pub stderr: bool,
    /// Allocate a terminal.
    pub tty: bool,
    /// The subprotocols offered, best first.
    pub protocols: Vec<ChannelProtocol>,
}

impl Default for AttachParams {
    fn default() -> Self {
        AttachParams {
            container: None,
            stdin: false,
            stdout: true,
            stderr: true,
            tty: false,
            protocols: ChannelProtocol::DEFAULT_OFFER.to_vec(),
        }
    }
}

impl AttachParams {
    /// Stdin, stdout and a terminal (stderr merged): `kubectl exec -it`.
    pub fn interactive_tty() -> AttachParams {
        AttachParams {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
            ..AttachParams::default()
        }
    }

    /// Sets the container.
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Attaches stdin or not.
    pub fn stdin(mut self, enabled: bool) -> Self {
        self.stdin = enabled;
        self
    }

    /// Attaches stdout or not.
    pub fn stdout(mut self, enabled: bool) -> Self {
        self.stdout = enabled;
        self
    }

    /// Attaches stderr or not.
    pub fn stderr(mut self, enabled: bool) -> Self {
        self.stderr = enabled;
        self
    }

    /// Allocates a terminal or not.
    pub fn tty(mut self, enabled: bool) -> Self {
        self.tty = enabled;
        self
    }

    /// Offers only these subprotocols, best first (to pin a version, or test a fallback).
    pub fn protocols(mut self, protocols: &[ChannelProtocol]) -> Self {
        self.protocols = protocols.to_vec();
        self
    }

    fn validate(&self) -> Result<(), Error> {
        if !(self.stdin || self.stdout || self.stderr) {
            return Err(Error::Request(
                "at least one of stdin, stdout and stderr must be attached".into(),
            ));
        }
        if self.tty && self.stderr {
            return Err(Error::Request(
                "stderr cannot be attached with a terminal (the terminal merges it into stdout)"
                    .into(),
            ));
        }
        if self.protocols.is_empty() {
            return Err(Error::Request("no subprotocol to offer".into()));
        }
        Ok(())
    }

    fn query(&self) -> Vec<(String, String)> {
        let mut query = Vec::new();
        if let Some(container) = &self.container {
            query.push(("container".to_string(), container.clone()));
        }
        for (key, on) in [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("tty", self.tty),
        ] {
            if on {
                query.push((key.to_string(), "true".to_string()));
            }
        }
        query
    }
}

pub use crate::channel::TerminalSize;

/// Sends terminal size changes to a remote command that has a terminal.
#[derive(Debug, Clone)]
pub struct TerminalResizer {
    sender: ChannelSender,
}

impl TerminalResizer {
    /// Tells the remote terminal its new size; `false` once the command has ended.
    pub fn resize(&self, size: TerminalSize) -> bool {
        self.sender
            .send(channel::RESIZE, Bytes::from(size.to_json()))
    }
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    code: i32,
    message: Option<String>,
}

impl ExitStatus {
    /// The exit code (0 for success).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The server's message for a non-zero exit (`command terminated with non-zero exit
    /// code: ...`).
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.code)
    }
}

/// Everything a command wrote, and how it ended ([`AttachedProcess::output`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Stdout (with stderr when a terminal merged them).
    pub stdout: Vec<u8>,
    /// Stderr.
    pub stderr: Vec<u8>,
    /// How the command ended.
    pub status: ExitStatus,
}

/// A running remote command (or an attachment to a container's main process).
///
/// Take its pipes with [`stdin`](Self::stdin), [`stdout`](Self::stdout) and
/// [`stderr`](Self::stderr), then wait for [`join`](Self::join). Dropping it closes the
/// connection, which ends the command's session on the server.
#[derive(Debug)]
pub struct AttachedProcess {
    streams: ChannelStreams,
    tty: bool,
}

impl AttachedProcess {
    fn new(
        socket: crate::upgrade::WebSocketConnection,
        params: &AttachParams,
    ) -> Result<Self, Error> {
        let protocol = ChannelProtocol::from_name(&socket.protocol)
            .ok_or_else(|| Error::Upgrade(format!("unknown subprotocol {:?}", socket.protocol)))?;
        let mut incoming = vec![(channel::ERROR, Incoming::Collect)];
        if params.stdout {
            incoming.push((channel::STDOUT, Incoming::Pipe));
        }
        if params.stderr {
            incoming.push((channel::STDERR, Incoming::Pipe));
        }
        let outgoing: &[u8] = if params.stdin { &[channel::STDIN] } else { &[] };
        Ok(AttachedProcess {
            streams: ChannelStreams::start(socket.socket, protocol, &incoming, outgoing),
            tty: params.tty,
        })
    }

    /// The negotiated subprotocol.
    pub fn protocol(&self) -> ChannelProtocol {
        self.streams.protocol()
    }

    /// The command's stdin (once). Shutting it down (or dropping it) is EOF for the command
    /// with `v5.channel.k8s.io`; older protocols cannot signal EOF before the end.
    pub fn stdin(&mut self) -> Option<ChannelWriter> {
        self.streams.take_writer(channel::STDIN)
    }

    /// The command's stdout (once); EOF when the command ends.
    pub fn stdout(&mut self) -> Option<ChannelReader> {
        self.streams.take_reader(channel::STDOUT)
    }

    /// The command's stderr (once); EOF when the command ends.
    pub fn stderr(&mut self) -> Option<ChannelReader> {
        self.streams.take_reader(channel::STDERR)
    }

    /// Whether shutting stdin down reaches the command as EOF (v5); with older protocols the
    /// command sees EOF only when the connection ends.
    pub fn can_close_stdin(&self) -> bool {
        self.protocol().can_close_channels()
    }

    /// Sends terminal size changes, when the command has a terminal (the kubelet reads the
    /// resize channel with every WebSocket protocol).
    pub fn terminal_resizer(&self) -> Option<TerminalResizer> {
        self.tty.then(|| TerminalResizer {
            sender: self.streams.sender(),
        })
    }

    /// Waits for the command to end and decodes its exit status. Pipes not taken are
    /// dropped first (their data is discarded), so unread output cannot block the command.
    ///
    /// A non-zero exit is `Ok` with its code; an error is a transport failure (the connection
    /// broke, or ended before the status arrived) or a failure to run the command at all
    /// (the server's `Status` as [`Error::Api`]).
    pub async fn join(mut self) -> Result<ExitStatus, Error> {
        let protocol = self.protocol();
        let mut ended = self.streams.ended().await;
        let error_channel = ended.collected.remove(&channel::ERROR).unwrap_or_default();
        let result = match (ended.result, ended.close) {
            (Ok(()), Some((code, reason))) if code != 1000 => Err(Error::transport_msg(format!(
                "the server closed the {protocol} stream with code {code}{}{reason}",
                if reason.is_empty() { "" } else { ": " }
            ))),
            (result, _) => result,
        };
        decode_status(protocol, &error_channel, result)
    }

    /// Closes stdin if it was attached and not taken, reads stdout and stderr to the end and
    /// waits for the exit status (`std::process::Command::output`). With stdin attached this
    /// needs v5, the only protocol that can close stdin: otherwise it fails at once rather
    /// than wait for a command that waits for EOF.
    pub async fn output(mut self) -> Result<Output, Error> {
        if let Some(mut stdin) = self.stdin() {
            if !self.can_close_stdin() {
                return Err(Error::Request(format!(
                    "output() cannot close stdin over {}: take stdin and end the command yourself",
                    self.protocol()
                )));
            }
            use tokio::io::AsyncWriteExt as _;
            // A closed connection is reported by join below.
            let _ = stdin.shutdown().await;
        }
        let mut stdout = self.stdout();
        let mut stderr = self.stderr();
        let (out, err) = tokio::join!(read_all(stdout.as_mut()), read_all(stderr.as_mut()));
        let status = self.join().await?;
        Ok(Output {
            stdout: out,
            stderr: err,
            status,
        })
    }
}

async fn read_all(pipe: Option<&mut ChannelReader>) -> Vec<u8> {
    let mut data = Vec::new();
    if let Some(pipe) = pipe {
        // A pipe fails only when the socket task is gone; its end is then reported by join.
        let _ = pipe.read_to_end(&mut data).await;
    }
    data
}

/// The exit status from the error channel's content and how the socket ended.
fn decode_status(
    protocol: ChannelProtocol,
    error_channel: &[u8],
    ended: Result<(), Error>,
) -> Result<ExitStatus, Error> {
    if error_channel.is_empty() {
        return match ended {
            Err(error) => Err(error),
            // Before v4, success is silence followed by a clean close.
            Ok(()) if !protocol.has_status() => Ok(ExitStatus {
                code: 0,
                message: None,
            }),
            Ok(()) => Err(Error::transport_msg(format!(
                "the {protocol} stream closed before the exit status arrived"
            ))),
        };
    }
    if protocol.has_status() {
        let status: Status = serde_json::from_slice(error_channel).map_err(|e| {
            Error::decode(
                format!(
                    "the exit status {:?} as a Status",
                    String::from_utf8_lossy(error_channel)
                ),
                e,
            )
        })?;
        if status.status == "Success" {
            return Ok(ExitStatus {
                code: 0,
                message: None,
            });
        }
        if status.reason == "NonZeroExitCode" {
            let code = status
                .details
                .as_ref()
                .and_then(|d| d.causes.iter().find(|c| c.reason == "ExitCode"))
                .and_then(|c| c.message.trim().parse::<i32>().ok());
            if let Some(code) = code {
                return Ok(ExitStatus {
                    code,
                    message: Some(status.message),
                });
            }
        }
        return Err(Error::Api(Box::new(status)));
    }
    // Before v4 the error channel is text; the kubelet's text ends with "exit code N".
    let message = String::from_utf8_lossy(error_channel).trim().to_string();
    let code = message
        .rsplit_once("exit code ")
        .and_then(|(_, code)| code.trim().parse::<i32>().ok());
    match code {
        Some(code) => Ok(ExitStatus {
            code,
            message: Some(message),
        }),
        None => Err(Error::Api(Box::new(Status {
            status: "Failure".into(),
            message,
            reason: "InternalError".into(),
            details: None,
            code: 500,
        }))),
    }
}

impl Api<Pod> {
    /// Runs `command` in a container of the pod `name` (`kubectl exec`).
    pub async fn exec<I, S>(
        &self,
        name: &str,
        command: I,
        params: &AttachParams,
    ) -> Result<AttachedProcess, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut query = params.query();
        let before = query.len();
        query.extend(
            command
                .into_iter()
                .map(|arg| ("command".to_string(), arg.into())),
        );
        if query.len() == before {
            return Err(Error::Request("exec needs a command".into()));
        }
        self.connect(name, "exec", query, params).await
    }

    /// Attaches to the main process of a container of the pod `name` (`kubectl attach`).
    pub async fn attach(
        &self,
        name: &str,
        params: &AttachParams,
    ) -> Result<AttachedProcess, Error> {
        self.connect(name, "attach", params.query(), params).await
    }

    async fn connect(
        &self,
        name: &str,
        subresource: &str,
        query: Vec<(String, String)>,
        params: &AttachParams,
    ) -> Result<AttachedProcess, Error> {
        params.validate()?;
        let protocols: Vec<&str> = params.protocols.iter().map(|p| p.name()).collect();
        let socket = self
            .subresource_request(http::Method::GET, name, subresource)?
            .params(query)
            .connect_websocket(&protocols)
            .await?;
        AttachedProcess::new(socket, params)
    }
}

/// Everything collected, for tests of the decoding.
#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn status(json: &str) -> Vec<u8> {
        json.as_bytes().to_vec()
    }

    #[test]
    fn v4_statuses_decode_into_exit_codes() {
        let ok = decode_status(
            ChannelProtocol::V5,
            &status(r#"{"metadata":{},"status":"Success"}"#),
            Ok(()),
        );
        assert_eq!(ok.unwrap().code(), 0);
        let failed = decode_status(
            ChannelProtocol::V4,
            &status(r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#),
            Ok(()),
        )
        .unwrap();
        assert_eq!(failed.code(), 3);
        assert!(!failed.success());
        assert!(failed.message().unwrap().contains("exit code 3"));
        let internal = decode_status(
            ChannelProtocol::V5,
            &status(r#"{"status":"Failure","message":"OCI runtime exec failed","reason":"InternalError","code":500}"#),
            Ok(()),
        )
        .unwrap_err();
        assert!(internal.is_server_error(), "{internal}");
        let garbage = decode_status(ChannelProtocol::V5, b"not json", Ok(())).unwrap_err();
        assert!(matches!(garbage, Error::Decode { .. }), "{garbage}");
    }

    #[test]
    fn a_missing_status_is_a_transport_error_from_v4_on() {
        let error = decode_status(ChannelProtocol::V5, b"", Ok(())).unwrap_err();
        assert!(
            error.to_string().contains("before the exit status"),
            "{error}"
        );
        assert_eq!(
            decode_status(ChannelProtocol::V3, b"", Ok(()))
                .unwrap()
                .code(),
            0
        );
        let broken = decode_status(ChannelProtocol::V3, b"", Err(Error::transport_msg("reset")));
        assert!(broken.is_err());
    }

    #[test]
    fn pre_v4_texts_carry_the_exit_code() {
        let text = b"command terminated with non-zero exit code: error executing command [sh -c exit 7], exit code 7";
        assert_eq!(
            decode_status(ChannelProtocol::V2, text, Ok(()))
                .unwrap()
                .code(),
            7
        );
        let error =
            decode_status(ChannelProtocol::V1, b"container not running", Ok(())).unwrap_err();
        assert!(error.to_string().contains("container not running"));
    }

    #[test]
    fn params_are_checked_and_encoded() {
        assert!(AttachParams::default().validate().is_ok());
        assert!(
            AttachParams::default()
                .stdout(false)
                .stderr(false)
                .validate()
                .is_err()
        );
        assert!(AttachParams::default().tty(true).validate().is_err());
        assert!(AttachParams::interactive_tty().validate().is_ok());
        assert!(AttachParams::default().protocols(&[]).validate().is_err());
        let query = AttachParams::interactive_tty().container("c").query();
        let query: HashMap<_, _> = query.into_iter().collect();
        assert_eq!(query["container"], "c");
        assert_eq!(query["tty"], "true");
        assert!(!query.contains_key("stderr"));
        assert_eq!(
            TerminalSize {
                width: 80,
                height: 24
            }
            .to_json(),
            br#"{"Width":80,"Height":24}"#
        );
    }
}
