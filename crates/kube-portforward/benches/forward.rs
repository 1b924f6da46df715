//! Bulk throughput through the forwarder and connection setup time, against kube-testserver
//! over TLS on loopback, each next to raw loopback TCP to the same echo server measured in the
//! same run.
//!
//! The pod's port is routed (`TestServer::route_pod_port`) to a local TCP echo server, so both
//! paths end at the same server: raw is `client -> echo`, forwarded is `client -> listener ->
//! WebSocket over TLS -> kube-testserver (API server and kubelet) -> echo` and back.
//!
//! ```sh
//! cargo bench -p kube-portforward --features rest,kube --bench forward
//! ```
//!
//! Besides criterion's figures it prints a summary: forwarded throughput as a share of raw,
//! and setup times (median of 200) with the default spare connection (`preconnect`), without
//! it, and with `warm_streams`. Criterion's setup figures connect back to back, faster than
//! spares are replaced (5 ms after one is taken).
//!
//! `FORWARD_BENCH_WORKERS` (default 2) sets the runtime's worker threads;
//! `FORWARD_BENCH_SERVER_WORKERS` (default 0: the same runtime) runs kube-testserver on a
//! runtime of its own with that many workers, as a separate API server process would be. A
//! filter that matches no group (`-- summary_only`) prints only the summary.
//!
//! Side by side with kube-rs (same server, same pod, same echo): a 16 MiB echo each way over
//! one port-forward stream opened without a local listener, through our forwarder on
//! kube-rest (`PortForwarder::connect`), through our forwarder on kube-rs's client
//! (`kube::PodDialer`), and through kube-rs's own `Api::<Pod>::portforward` (`take_stream`).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_portforward::rest::PodDialer;
use kube_portforward::{Forwarding, PortForwarder};
use kube_rest::{Api, Client, Config, Kubeconfig, PostParams};
use kube_testserver::TestServer;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

const PORT: u16 = 9000;
const BULK: usize = 16 << 20;

/// A TCP echo server on loopback.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.set_nodelay(true);
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    address
}

struct Setup {
    rt: Runtime,
    echo: SocketAddr,
    forwarding: Forwarding,
    /// The same with `warm_streams(true)`.
    warm: Forwarding,
    /// The same with `preconnect(false)`: every connection opens its own TCP + TLS connection.
    cold: Forwarding,
    /// `forwarder` with `preconnect(false)`.
    cold_forwarder: PortForwarder,
    forwarder: PortForwarder,
    /// Our forwarder dialing through kube-rs's client.
    kube_forwarder: PortForwarder,
    /// kube-rs's `Api<Pod>`, for its own `portforward`.
    kube_pods: kube::Api<Pod>,
    _server: TestServer,
    /// kube-testserver's own runtime, if any (`FORWARD_BENCH_SERVER_WORKERS`).
    _server_rt: Option<Runtime>,
}

/// `FORWARD_BENCH_WORKERS` (default 2): the runtime's worker threads.
/// `FORWARD_BENCH_SERVER_WORKERS` (default 0: the same runtime): kube-testserver on a runtime
/// of its own with that many workers, as a separate API server process would be.
fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime(workers: usize) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

fn setup() -> Setup {
    let rt = runtime(env_usize("FORWARD_BENCH_WORKERS", 2));
    let server_rt = match env_usize("FORWARD_BENCH_SERVER_WORKERS", 0) {
        0 => None,
        workers => Some(runtime(workers)),
    };
    let start_server = || async {
        TestServer::builder()
            .simulated_kubelet(Some(Duration::from_millis(1)))
            .start()
            .await
            .expect("server")
    };
    let server = match &server_rt {
        Some(server_rt) => server_rt.block_on(start_server()),
        None => rt.block_on(start_server()),
    };
    let (
        server,
        echo,
        forwarder,
        forwarding,
        warm,
        cold_forwarder,
        cold,
        kube_forwarder,
        kube_pods,
    ) = rt.block_on(async move {
        let kubeconfig =
            Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("/bench")).expect("kubeconfig");
        let config = Config::from_kubeconfig(&kubeconfig)
            .expect("config")
            .without_throttle();
        let client = Client::try_from_config(config).expect("client");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("bench".into()),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "main".into(),
                    image: Some("registry.example/echo:1".into()),
                    ports: Some(vec![ContainerPort {
                        container_port: PORT.into(),
                        ..ContainerPort::default()
                    }]),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
            ..Pod::default()
        };
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("pod");
        loop {
            let pod = pods.get("bench").await.expect("get");
            if pod.status.and_then(|s| s.phase).as_deref() == Some("Running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let echo = echo_server().await;
        server.route_pod_port("default", "bench", PORT, echo);
        let forwarder = PortForwarder::builder(PodDialer::new(client.clone(), "default", "bench"))
            .addresses(["127.0.0.1"])
            .port(format!(":{PORT}"))
            .build()
            .expect("forwarder");
        let forwarding = forwarder.forward().await.expect("forward");
        let cold_forwarder =
            PortForwarder::builder(PodDialer::new(client.clone(), "default", "bench"))
                .addresses(["127.0.0.1"])
                .port(format!(":{PORT}"))
                .preconnect(false)
                .build()
                .expect("forwarder");
        let cold = cold_forwarder.forward().await.expect("forward");
        let warm = PortForwarder::builder(PodDialer::new(client, "default", "bench"))
            .addresses(["127.0.0.1"])
            .port(format!(":{PORT}"))
            .warm_streams(true)
            .build()
            .expect("forwarder")
            .forward()
            .await
            .expect("forward");
        let kube_kubeconfig =
            kube::config::Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("kubeconfig");
        let kube_config =
            kube::Config::from_custom_kubeconfig(kube_kubeconfig, &Default::default())
                .await
                .expect("kube-rs config");
        let kube_client = kube::Client::try_from(kube_config).expect("kube-rs client");
        let kube_forwarder = PortForwarder::builder(kube_portforward::kube::PodDialer::new(
            kube_client.clone(),
            "default",
            "bench",
        ))
        .addresses(["127.0.0.1"])
        .port(format!(":{PORT}"))
        .build()
        .expect("forwarder");
        let kube_pods = kube::Api::<Pod>::namespaced(kube_client, "default");
        (
            server,
            echo,
            forwarder,
            forwarding,
            warm,
            cold_forwarder,
            cold,
            kube_forwarder,
            kube_pods,
        )
    });
    Setup {
        rt,
        echo,
        forwarding,
        warm,
        cold,
        cold_forwarder,
        forwarder,
        kube_forwarder,
        kube_pods,
        _server: server,
        _server_rt: server_rt,
    }
}

/// Sends `bytes` through `address` and reads them back, concurrently.
async fn bulk(address: SocketAddr, bytes: usize) -> Duration {
    let mut conn = TcpStream::connect(address).await.expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    let chunk = vec![0x5a; 256 * 1024];
    let started = Instant::now();
    let (mut r, mut w) = conn.split();
    let send = async {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).await.expect("write");
            left -= n;
        }
    };
    let receive = async {
        let mut buf = vec![0; 256 * 1024];
        let mut got = 0;
        while got < bytes {
            let n = r.read(&mut buf).await.expect("read");
            assert!(n > 0, "EOF after {got} bytes");
            got += n;
        }
    };
    tokio::join!(send, receive);
    started.elapsed()
}

/// Sends `bytes` through an open stream and reads them back, concurrently.
async fn bulk_stream<S: AsyncRead + AsyncWrite + Unpin>(stream: S, bytes: usize) -> Duration {
    let chunk = vec![0x5a; 256 * 1024];
    let (mut r, mut w) = tokio::io::split(stream);
    let started = Instant::now();
    let send = async {
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len());
            w.write_all(&chunk[..n]).await.expect("write");
            left -= n;
        }
        w.flush().await.expect("flush");
    };
    let receive = async {
        let mut buf = vec![0; 256 * 1024];
        let mut got = 0;
        while got < bytes {
            let n = r.read(&mut buf).await.expect("read");
            assert!(n > 0, "EOF after {got} bytes");
            got += n;
        }
    };
    tokio::join!(send, receive);
    started.elapsed()
}

/// Which client carries a stream of the side-by-side comparison.
#[derive(Clone, Copy)]
enum Via {
    /// Our forwarder on kube-rest.
    Ours,
    /// Our forwarder on kube-rs's client.
    OursOnKubeRs,
    /// kube-rs's own `Api::<Pod>::portforward`.
    KubeRs,
}

/// A fresh stream to the pod's echo port (untimed) and a bulk echo through it (timed).
async fn bulk_via(s: &Setup, via: Via) -> Duration {
    match via {
        Via::Ours => bulk_stream(s.forwarder.connect(PORT).await.expect("connect"), BULK).await,
        Via::OursOnKubeRs => {
            bulk_stream(s.kube_forwarder.connect(PORT).await.expect("connect"), BULK).await
        }
        Via::KubeRs => {
            let mut forwarder = s
                .kube_pods
                .portforward("bench", &[PORT])
                .await
                .expect("kube-rs portforward");
            let stream = forwarder.take_stream(PORT).expect("stream");
            let took = bulk_stream(stream, BULK).await;
            forwarder.abort();
            took
        }
    }
}

/// A new connection and a one-byte round trip.
async fn round_trip(address: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut conn = TcpStream::connect(address).await.expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    conn.write_all(b"x").await.expect("write");
    assert_eq!(conn.read_u8().await.expect("read"), b'x');
    started.elapsed()
}

/// One-byte round trips on an open connection (the median of 50).
async fn established_round_trip(address: SocketAddr) -> Duration {
    let mut conn = TcpStream::connect(address).await.expect("connect");
    conn.set_nodelay(true).expect("nodelay");
    let mut samples = Vec::new();
    for _ in 0..51 {
        let started = Instant::now();
        conn.write_all(b"x").await.expect("write");
        assert_eq!(conn.read_u8().await.expect("read"), b'x');
        samples.push(started.elapsed());
    }
    samples.remove(0);
    median(samples)
}

/// `PortForwarder::connect` and a one-byte round trip.
async fn stream_round_trip(forwarder: &PortForwarder) -> Duration {
    let started = Instant::now();
    let mut stream = forwarder.connect(PORT).await.expect("connect");
    stream.write_all(b"x").await.expect("write");
    assert_eq!(stream.read_u8().await.expect("read"), b'x');
    started.elapsed()
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let forwarded = SocketAddr::from(([127, 0, 0, 1], s.forwarding.ports()[0].local));
    let warm = SocketAddr::from(([127, 0, 0, 1], s.warm.ports()[0].local));
    let cold = SocketAddr::from(([127, 0, 0, 1], s.cold.ports()[0].local));
    let mut group = c.benchmark_group("bulk_echo_16MiB");
    group.throughput(Throughput::Bytes(2 * BULK as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("raw_tcp", |b| {
        b.iter_custom(|iters| {
            s.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += bulk(s.echo, BULK).await;
                }
                total
            })
        });
    });
    group.bench_function("forwarded", |b| {
        b.iter_custom(|iters| {
            s.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += bulk(forwarded, BULK).await;
                }
                total
            })
        });
    });
    group.finish();
    let mut group = c.benchmark_group("bulk_stream_16MiB");
    group.throughput(Throughput::Bytes(2 * BULK as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for (name, via) in [
        ("ours_kube_rest", Via::Ours),
        ("ours_on_kube_rs_client", Via::OursOnKubeRs),
        ("kube_rs_portforward", Via::KubeRs),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                s.rt.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += bulk_via(&s, via).await;
                    }
                    total
                })
            });
        });
    }
    group.finish();
    let mut group = c.benchmark_group("setup_round_trip");
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("raw_tcp", |b| {
        b.iter_custom(|iters| {
            s.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round_trip(s.echo).await;
                }
                total
            })
        });
    });
    group.bench_function("forwarded_listener", |b| {
        b.iter_custom(|iters| {
            s.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += round_trip(forwarded).await;
                }
                total
            })
        });
    });
    group.bench_function("connect_stream", |b| {
        b.iter_custom(|iters| {
            s.rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    total += stream_round_trip(&s.forwarder).await;
                }
                total
            })
        });
    });
    group.finish();

    // The summary, measured again side by side (best of 5 for throughput).
    s.rt.block_on(async {
        println!(
            "summary: 1-byte round trip on an open connection (median of 50): raw {:?}, forwarded {:?}",
            established_round_trip(s.echo).await,
            established_round_trip(forwarded).await,
        );
        let mut raw = Duration::MAX;
        let mut fwd = Duration::MAX;
        for _ in 0..5 {
            raw = raw.min(bulk(s.echo, BULK).await);
            fwd = fwd.min(bulk(forwarded, BULK).await);
        }
        let mib_s = |d: Duration| (2 * BULK) as f64 / d.as_secs_f64() / f64::from(1 << 20);
        println!(
            "summary: bulk echo 16 MiB each way: raw loopback TCP {:.0} MiB/s, forwarded {:.0} MiB/s ({:.1}% of raw)",
            mib_s(raw),
            mib_s(fwd),
            100.0 * raw.as_secs_f64() / fwd.as_secs_f64()
        );
        let mut best = [Duration::MAX; 3];
        for _ in 0..5 {
            for (i, via) in [Via::Ours, Via::OursOnKubeRs, Via::KubeRs].into_iter().enumerate() {
                best[i] = best[i].min(bulk_via(&s, via).await);
            }
        }
        println!(
            "summary: bulk echo 16 MiB each way over one stream (best of 5): ours on kube-rest {:.0} MiB/s, ours on kube-rs's client {:.0} MiB/s, kube-rs's portforward {:.0} MiB/s (ours {:.2}x kube-rs)",
            mib_s(best[0]),
            mib_s(best[1]),
            mib_s(best[2]),
            best[2].as_secs_f64() / best[0].as_secs_f64()
        );
        let mut raw = Vec::new();
        let mut listener = Vec::new();
        let mut warmed = Vec::new();
        let mut stream = Vec::new();
        let mut cold_listener = Vec::new();
        let mut cold_stream = Vec::new();
        for _ in 0..200 {
            raw.push(round_trip(s.echo).await);
            cold_listener.push(round_trip(cold).await);
            cold_stream.push(stream_round_trip(&s.cold_forwarder).await);
            // The spare connection (preconnect) and the spare stream (warm_streams) taken by
            // the last connection are opened again in the background 5 ms later; a client
            // connecting before that dials its own (criterion's setup figures above are such
            // back-to-back connections). Untimed pauses.
            tokio::time::sleep(Duration::from_millis(10)).await;
            listener.push(round_trip(forwarded).await);
            tokio::time::sleep(Duration::from_millis(10)).await;
            stream.push(stream_round_trip(&s.forwarder).await);
            warmed.push(round_trip(warm).await);
        }
        println!(
            "summary: connection setup + 1-byte round trip (median of 200): raw {:?}, through the listener {:?} (preconnect off {:?}), through a listener with warm_streams {:?}, PortForwarder::connect {:?} (preconnect off {:?})",
            median(raw),
            median(listener),
            median(cold_listener),
            median(warmed),
            median(stream),
            median(cold_stream)
        );
    });
}

criterion_group!(forward, benches);
criterion_main!(forward);
