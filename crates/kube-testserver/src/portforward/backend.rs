//! What answers inside a simulated pod: the container ports a forwarded connection reaches.
//!
//! * A port routed by the test ([`crate::TestServer::route_pod_port`]) connects to that local
//!   TCP address.
//! * An image named `nginx…` listens on port 80 with a small HTTP/1.1 server ([`nginx`]).
//! * Every other TCP `containerPort` the pod declares echoes what it receives.
//! * Any other port refuses the connection, with the error containerd reports through the
//!   kubelet.
//!
//! Forwarding copies both ways as containerd's `portForward` does: when one direction ends,
//! the other gets up to one second to finish, then the pod connection is closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::nginx;

/// A byte stream to a process in the pod.
pub(crate) trait PodIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> PodIo for T {}

/// A connection to a pod port.
pub(crate) type PodConnection = Box<dyn PodIo>;

/// The in-memory pipe buffer between a forwarded connection and a simulated process.
const PIPE_BUFFER: usize = 64 << 10;
/// How much one read from the pod connection takes at most. Go's `io.Copy` (containerd's
/// copy) reads 32 KiB at a time; twice that halves the per-message cost of bulk transfers
/// (each read becomes one message to the client) and stays under glibc's mmap threshold.
const COPY_BUFFER: usize = 64 << 10;
/// How long the second direction may take once the first ended (containerd: 1s).
const SECOND_DIRECTION_GRACE: Duration = Duration::from_secs(1);

/// What listens on a port of a pod's network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Listener {
    /// The nginx welcome page server.
    Nginx,
    /// Echoes bytes back.
    Echo,
    /// A local TCP address the test routed this port to.
    Route(SocketAddr),
}

/// The pod as port forwarding sees it: identity and listening ports.
#[derive(Debug, Clone)]
pub(crate) struct PodNetwork {
    /// The pod's name.
    pub name: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's UID.
    pub uid: String,
    /// The sandbox id containerd knows the pod by (64 hex digits).
    pub sandbox_id: String,
    /// The path of the sandbox's network namespace.
    pub netns: String,
    /// What the pod's containers listen on (routes are looked up per connection).
    pub listeners: HashMap<u16, Listener>,
}

/// A stable pseudo-random hex string of `len` digits derived from `seed`.
fn hex_id(seed: &str, len: usize) -> String {
    use std::hash::{Hash, Hasher};
    let mut out = String::with_capacity(len + 16);
    let mut round = 0u64;
    while out.len() < len {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (seed, round).hash(&mut hasher);
        out.push_str(&format!("{:016x}", hasher.finish()));
        round += 1;
    }
    out.truncate(len);
    out
}

impl PodNetwork {
    /// The ports `pod` listens on: port 80 for an `nginx…` image, and every TCP
    /// `containerPort` of its containers (an echo, unless nginx serves it).
    pub fn of(pod: &Value) -> PodNetwork {
        let meta = &pod["metadata"];
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        let uid = text(&meta["uid"]);
        let mut listeners = HashMap::new();
        for container in pod["spec"]["containers"].as_array().into_iter().flatten() {
            let image = container["image"].as_str().unwrap_or("");
            if image_name(image).starts_with("nginx") {
                listeners.insert(80, Listener::Nginx);
            }
            for port in container["ports"].as_array().into_iter().flatten() {
                let tcp = port["protocol"].as_str().is_none_or(|p| p == "TCP");
                let number = port["containerPort"]
                    .as_u64()
                    .and_then(|p| u16::try_from(p).ok());
                if let (true, Some(number)) = (tcp, number) {
                    listeners.entry(number).or_insert(Listener::Echo);
                }
            }
        }
        let netns = hex_id(&format!("netns/{uid}"), 32);
        PodNetwork {
            name: text(&meta["name"]),
            namespace: text(&meta["namespace"]),
            sandbox_id: hex_id(&format!("sandbox/{uid}"), 64),
            netns: format!(
                "/var/run/netns/cni-{}-{}-{}-{}-{}",
                &netns[0..8],
                &netns[8..12],
                &netns[12..16],
                &netns[16..20],
                &netns[20..32]
            ),
            uid,
            listeners,
        }
    }

    /// The error the kubelet writes on the error stream when forwarding `port` failed with
    /// containerd's `cause`. Through the CRI streaming server the "pod" is the sandbox id and
    /// the uid is empty.
    pub fn forward_error(&self, port: u16, cause: &str) -> String {
        format!(
            "error forwarding port {port} to pod {}, uid : failed to execute portforward in network namespace {}: {cause}",
            self.sandbox_id,
            crate::status::go_quote(&self.netns),
        )
    }

    /// containerd's error for a port nothing listens on (both address families refused).
    fn refused(&self, port: u16, ipv4: &str) -> String {
        format!(
            "failed to connect to localhost:{port} inside namespace {}, IPv4: {ipv4} IPv6 dial tcp6 [::1]:{port}: connect: connection refused ",
            crate::status::go_quote(&self.sandbox_id)
        )
    }

    /// Connects to `port` in the pod (`route` overrides what the pod listens on); the error
    /// is containerd's text.
    pub async fn connect(
        &self,
        port: u16,
        route: Option<SocketAddr>,
    ) -> Result<PodConnection, String> {
        let listener = route
            .map(Listener::Route)
            .or_else(|| self.listeners.get(&port).copied());
        match listener {
            Some(Listener::Nginx) => {
                let (near, far) = tokio::io::duplex(PIPE_BUFFER);
                tokio::spawn(nginx::serve(far));
                Ok(Box::new(near))
            }
            Some(Listener::Echo) => {
                let (near, far) = tokio::io::duplex(PIPE_BUFFER);
                tokio::spawn(echo(far));
                Ok(Box::new(near))
            }
            Some(Listener::Route(address)) => match tokio::net::TcpStream::connect(address).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    Ok(Box::new(stream))
                }
                Err(error) => Err(self.refused(
                    port,
                    &format!("dial tcp4 {address}: {}", go_dial_error(&error)),
                )),
            },
            None => Err(self.refused(
                port,
                &format!("dial tcp4 127.0.0.1:{port}: connect: connection refused"),
            )),
        }
    }
}

/// The repository-less image name: `docker.io/library/nginx:1.27` is `nginx`.
fn image_name(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split(['@', ':']).next().unwrap_or(last)
}

/// How Go's dialer words a connect error.
fn go_dial_error(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => format!("connect: {error}"),
    }
}

/// An echo server on one connection.
async fn echo(stream: tokio::io::DuplexStream) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    if let Err(error) = tokio::io::copy(&mut reader, &mut writer).await {
        tracing::debug!(%error, "echo connection ended");
    }
}

/// Copies between a pod connection and a client stream as containerd does: `from_client`
/// ends when the client half-closes (or leaves); what the pod writes is sent as
/// `wrap(chunk)` on `to_client`, where `chunk` starts with `headroom` zero bytes the caller
/// may fill in (a frame header) before the data, so the data is copied once, by the read.
/// Returns when one direction ended and the other finished or had its second, or at `stop`
/// (the pod's containers stopped: the connection just ends). The error is the first
/// direction's failure, as containerd reports it.
pub(crate) async fn forward<T: Send>(
    connection: PodConnection,
    mut from_client: mpsc::Receiver<Bytes>,
    to_client: mpsc::Sender<T>,
    headroom: usize,
    wrap: impl Fn(BytesMut) -> T,
    stop: CancellationToken,
) -> Result<(), String> {
    let (mut reader, mut writer) = tokio::io::split(connection);
    let pod_to_client = async {
        // One allocation serves many reads: the chunks split off share it, and `reserve`
        // takes it back once the client side dropped them.
        let mut buffer = BytesMut::new();
        loop {
            buffer.reserve(headroom + COPY_BUFFER);
            buffer.put_bytes(0, headroom);
            let read = reader
                .read_buf(&mut (&mut buffer).limit(COPY_BUFFER))
                .await
                .map_err(|error| format!("read: {error}"))?;
            if read == 0 {
                return Ok(());
            }
            if to_client.send(wrap(buffer.split())).await.is_err() {
                return Err("io: read/write on closed pipe".to_string());
            }
        }
    };
    let client_to_pod = async {
        while let Some(chunk) = from_client.recv().await {
            writer
                .write_all(&chunk)
                .await
                .map_err(|error| format!("write: {error}"))?;
        }
        Ok(())
    };
    tokio::pin!(pod_to_client, client_to_pod);
    let (first, pod_side_done) = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        result = &mut pod_to_client => (result, true),
        result = &mut client_to_pod => (result, false),
    };
    let second = async {
        if pod_side_done {
            client_to_pod.await
        } else {
            pod_to_client.await
        }
    };
    let second = tokio::select! {
        _ = stop.cancelled() => Ok(()),
        _ = tokio::time::sleep(SECOND_DIRECTION_GRACE) => Ok(()),
        result = second => result,
    };
    first.and(second)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listeners_follow_the_image_and_the_declared_tcp_ports() {
        let pod = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {"containers": [
                {"name": "a", "image": "docker.io/library/nginx:1.27", "ports": [{"containerPort": 8080}]},
                {"name": "b", "image": "busybox", "ports": [{"containerPort": 9000}, {"containerPort": 53, "protocol": "UDP"}]},
            ]}
        });
        let network = PodNetwork::of(&pod);
        assert_eq!(network.listeners.get(&80), Some(&Listener::Nginx));
        assert_eq!(network.listeners.get(&8080), Some(&Listener::Echo));
        assert_eq!(network.listeners.get(&9000), Some(&Listener::Echo));
        assert_eq!(network.listeners.get(&53), None);
        assert_eq!(network.sandbox_id.len(), 64);
        assert!(network.netns.starts_with("/var/run/netns/cni-"));
        assert_eq!(PodNetwork::of(&pod).sandbox_id, network.sandbox_id);
    }

    #[test]
    fn image_names_lose_registry_tag_and_digest() {
        assert_eq!(image_name("nginx"), "nginx");
        assert_eq!(image_name("nginx:1.27-alpine"), "nginx");
        assert_eq!(
            image_name("registry.k8s.io/x/nginx-slim@sha256:00"),
            "nginx-slim"
        );
        assert_eq!(image_name("localhost:5000/busybox"), "busybox");
    }

    #[tokio::test]
    async fn a_port_nothing_listens_on_is_refused_with_containerds_text() {
        let pod = json!({"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
        let network = PodNetwork::of(&pod);
        let Err(cause) = network.connect(81, None).await else {
            panic!("port 81 must be refused");
        };
        let message = network.forward_error(81, &cause);
        assert_eq!(
            message,
            format!(
                "error forwarding port 81 to pod {id}, uid : failed to execute portforward in network namespace \"{ns}\": failed to connect to localhost:81 inside namespace \"{id}\", IPv4: dial tcp4 127.0.0.1:81: connect: connection refused IPv6 dial tcp6 [::1]:81: connect: connection refused ",
                id = network.sandbox_id,
                ns = network.netns
            )
        );
    }
}
