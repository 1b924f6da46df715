//! Container logs: read at once, or followed as a byte stream or a stream of lines.
//!
//! ```no_run
//! use futures_util::{StreamExt as _, pin_mut};
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_rest::logs::LogParams;
//! use kube_rest::{Api, Client};
//!
//! # async fn run() -> Result<(), kube_rest::Error> {
//! let pods: Api<Pod> = Api::default_namespaced(Client::try_default()?);
//! let last = pods.logs("web-0", &LogParams::default().tail_lines(10)).await?;
//! print!("{last}");
//! let lines = pods.log_lines("web-0", &LogParams::default().follow(true)).await?;
//! pin_mut!(lines);
//! while let Some(line) = lines.next().await {
//!     println!("{}", line?);
//! } // dropping `lines` earlier stops the HTTP stream
//! # Ok(())
//! # }
//! ```

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::TryStreamExt as _;
use futures_util::stream::{self, MapErr, Stream};
use k8s_openapi::api::core::v1::Pod;
use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncRead, ReadBuf};
use tokio_util::io::StreamReader;

use crate::api::Api;
use crate::error::Error;

/// Options of a log request (client-go's `PodLogOptions`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct LogParams {
    /// The container; may be left out when the pod has one.
    pub container: Option<String>,
    /// Keep streaming new lines until the container stops or the stream is dropped.
    pub follow: bool,
    /// Only lines of the last this many seconds.
    pub since_seconds: Option<i64>,
    /// Only lines since this time (exclusive with `since_seconds`).
    pub since_time: Option<jiff::Timestamp>,
    /// Only the last this many lines.
    pub tail_lines: Option<i64>,
    /// Prefix every line with its RFC 3339 time.
    pub timestamps: bool,
    /// The logs of the previous instance of the container (after a restart).
    pub previous: bool,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
}

impl LogParams {
    /// Sets the container.
    pub fn container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// Follows the log.
    pub fn follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// Only the last `seconds` seconds.
    pub fn since_seconds(mut self, seconds: i64) -> Self {
        self.since_seconds = Some(seconds);
        self
    }

    /// Only lines since `time`.
    pub fn since_time(mut self, time: jiff::Timestamp) -> Self {
        self.since_time = Some(time);
        self
    }

    /// Only the last `lines` lines.
    pub fn tail_lines(mut self, lines: i64) -> Self {
        self.tail_lines = Some(lines);
        self
    }

    /// Timestamps each line.
    pub fn timestamps(mut self, timestamps: bool) -> Self {
        self.timestamps = timestamps;
        self
    }

    /// The previous instance's logs.
    pub fn previous(mut self, previous: bool) -> Self {
        self.previous = previous;
        self
    }

    /// At most `bytes` bytes.
    pub fn limit_bytes(mut self, bytes: i64) -> Self {
        self.limit_bytes = Some(bytes);
        self
    }

    /// The query parameters, as kube-apiserver names them.
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = Vec::new();
        if let Some(container) = &self.container {
            query.push(("container", container.clone()));
        }
        for (key, on) in [
            ("follow", self.follow),
            ("timestamps", self.timestamps),
            ("previous", self.previous),
        ] {
            if on {
                query.push((key, "true".to_string()));
            }
        }
        for (key, value) in [
            ("sinceSeconds", self.since_seconds),
            ("tailLines", self.tail_lines),
            ("limitBytes", self.limit_bytes),
        ] {
            if let Some(value) = value {
                query.push((key, value.to_string()));
            }
        }
        if let Some(time) = &self.since_time {
            // Seconds precision, as metav1.Time serializes.
            query.push(("sinceTime", time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()));
        }
        query
    }
}

type BodyBytes = MapErr<crate::Body, fn(Error) -> io::Error>;

fn to_io_error(error: Error) -> io::Error {
    // The transport error stays the io::Error's source.
    io::Error::other(error)
}

/// A log as it arrives ([`Api::log_stream`]): an [`AsyncBufRead`]. Dropping it ends the HTTP
/// stream.
#[derive(Debug)]
pub struct LogStream {
    reader: StreamReader<BodyBytes, Bytes>,
}

impl AsyncRead for LogStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncBufRead for LogStream {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        Pin::new(&mut self.get_mut().reader).poll_fill_buf(cx)
    }

    fn consume(mut self: Pin<&mut Self>, amount: usize) {
        Pin::new(&mut self.reader).consume(amount)
    }
}

impl Api<Pod> {
    /// The log of a container of the pod `name`, read to the end (with `follow`, until the
    /// container stops).
    ///
    /// The client's timeout covers the response head only (a followed log may stream for
    /// long); invalid UTF-8 is replaced.
    pub async fn logs(&self, name: &str, params: &LogParams) -> Result<String, Error> {
        use tokio::io::AsyncReadExt as _;
        let mut stream = self.log_stream(name, params).await?;
        let mut body = Vec::new();
        stream
            .read_to_end(&mut body)
            .await
            .map_err(|e| Error::transport("reading the log", e))?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The log of a container of the pod `name` as it arrives. The client's timeout covers
    /// the response head only, so a followed log can stream for as long as it is read.
    pub async fn log_stream(&self, name: &str, params: &LogParams) -> Result<LogStream, Error> {
        let response = self
            .subresource_request(http::Method::GET, name, "log")?
            .params(params.query())
            .accept("*/*")
            .send_streaming()
            .await?;
        let bytes: BodyBytes = response.into_body().map_err(to_io_error as fn(_) -> _);
        Ok(LogStream {
            reader: StreamReader::new(bytes),
        })
    }

    /// The log of a container of the pod `name` line by line (without the newline; invalid
    /// UTF-8 replaced). A broken stream ends with one error item.
    pub async fn log_lines(
        &self,
        name: &str,
        params: &LogParams,
    ) -> Result<impl Stream<Item = Result<String, Error>> + Send + use<>, Error> {
        let reader = self.log_stream(name, params).await?;
        Ok(lines(reader))
    }
}

/// The lines of `reader`; the last line counts even without a newline.
fn lines<R: AsyncBufRead + Unpin + Send>(
    reader: R,
) -> impl Stream<Item = Result<String, Error>> + Send {
    stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => None,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                }
                Some((
                    Ok(String::from_utf8_lossy(&line).into_owned()),
                    Some(reader),
                ))
            }
            Err(error) => Some((Err(Error::transport("reading the log", error)), None)),
        }
    })
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt as _;

    use super::*;

    #[test]
    fn params_use_the_api_names() {
        let time: jiff::Timestamp = "2026-11-23T20:43:31.5Z".parse().unwrap();
        let query = LogParams::default()
            .container("c")
            .follow(true)
            .since_seconds(10)
            .since_time(time)
            .tail_lines(3)
            .timestamps(true)
            .previous(true)
            .limit_bytes(100)
            .query();
        let get = |key: &str| {
            query
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("container"), Some("c"));
        assert_eq!(get("follow"), Some("true"));
        assert_eq!(get("sinceSeconds"), Some("10"));
        assert_eq!(get("sinceTime"), Some("2026-11-23T20:43:31Z"));
        assert_eq!(get("tailLines"), Some("3"));
        assert_eq!(get("limitBytes"), Some("100"));
        assert!(LogParams::default().query().is_empty());
    }

    #[tokio::test]
    async fn lines_split_on_newlines_and_keep_a_partial_last_line() {
        let data: &[u8] = b"one\r\ntwo\n\xffthree";
        let lines: Vec<_> = lines(data).collect().await;
        let lines: Vec<String> = lines.into_iter().map(Result::unwrap).collect();
        assert_eq!(lines, ["one", "two", "\u{fffd}three"]);
    }
}
