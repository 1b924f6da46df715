//! `proxy-url`: HTTP CONNECT and SOCKS5 proxies in front of kube-testserver over TLS.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_rest::{Api, Client, Config, Error, Kubeconfig, ListParams};
use kube_testserver::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn config_of(server: &TestServer) -> Config {
    let kubeconfig = Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .unwrap();
    Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle()
}

/// A CONNECT proxy that counts tunnels, optionally demanding `Proxy-Authorization`.
async fn connect_proxy(required_auth: Option<&'static str>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let counter = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                if let Some(auth) = required_auth
                    && !head.contains(&format!("Proxy-Authorization: {auth}"))
                {
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                        .await;
                    return;
                }
                let Ok(mut upstream) = TcpStream::connect(&target).await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (format!("http://{address}"), tunnels)
}

/// A SOCKS5 proxy (no authentication, IPv4 and domain targets).
async fn socks_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let tunnels = Arc::new(AtomicUsize::new(0));
    let counter = tunnels.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut greeting = [0u8; 2];
                client.read_exact(&mut greeting).await.ok()?;
                let mut methods = vec![0u8; greeting[1] as usize];
                client.read_exact(&mut methods).await.ok()?;
                client.write_all(&[5, 0]).await.ok()?;
                let mut request = [0u8; 4];
                client.read_exact(&mut request).await.ok()?;
                let host = match request[3] {
                    1 => {
                        let mut ip = [0u8; 4];
                        client.read_exact(&mut ip).await.ok()?;
                        std::net::Ipv4Addr::from(ip).to_string()
                    }
                    3 => {
                        let mut len = [0u8; 1];
                        client.read_exact(&mut len).await.ok()?;
                        let mut name = vec![0u8; len[0] as usize];
                        client.read_exact(&mut name).await.ok()?;
                        String::from_utf8(name).ok()?
                    }
                    _ => return None,
                };
                let mut port = [0u8; 2];
                client.read_exact(&mut port).await.ok()?;
                let mut upstream = TcpStream::connect((host.as_str(), u16::from_be_bytes(port)))
                    .await
                    .ok()?;
                counter.fetch_add(1, Ordering::SeqCst);
                client
                    .write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
                    .await
                    .ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream)
                    .await
                    .ok()?;
                Some(())
            });
        }
    });
    (format!("socks5://{address}"), tunnels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_an_http_connect_proxy() {
    if common::skip_on_cluster(
        "requests_go_through_an_http_connect_proxy",
        "it counts the proxy's tunnels to kube-testserver",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let (proxy, tunnels) = connect_proxy(None).await;
    let config = config_of(&server).with_proxy_url(&proxy).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    api.list(&ListParams::default()).await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    // One tunnel, reused by the pooled connection.
    assert_eq!(tunnels.load(Ordering::SeqCst), 1);

    // From a kubeconfig's proxy-url, with credentials.
    let (proxy, tunnels) = connect_proxy(Some("Basic dXNlcjpwQHNz")).await; // user:p@ss
    let yaml = server.kubeconfig_yaml();
    let mut kubeconfig = Kubeconfig::parse(&yaml, Path::new("/k")).unwrap();
    let address = proxy.trim_start_matches("http://");
    kubeconfig.clusters[0].cluster.as_mut().unwrap().proxy_url =
        Some(format!("http://user:p%40ss@{address}"));
    let config = Config::from_kubeconfig(&kubeconfig)
        .unwrap()
        .without_throttle();
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(tunnels.load(Ordering::SeqCst), 1);

    // Refused by the proxy: a transport error.
    let config = config_of(&server).with_proxy_url(&proxy).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");

    // Unsupported schemes are configuration errors.
    assert!(
        config_of(&server)
            .with_proxy_url("https://proxy:3128")
            .is_err()
    );
    assert!(config_of(&server).with_proxy_url("ftp://proxy").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_go_through_a_socks5_proxy() {
    if common::skip_on_cluster(
        "requests_go_through_a_socks5_proxy",
        "it counts the proxy's tunnels to kube-testserver",
    ) {
        return;
    }
    let server = TestServer::builder().start().await.unwrap();
    let (proxy, tunnels) = socks_proxy().await;
    let config = config_of(&server).with_proxy_url(&proxy).unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(Client::try_from_config(config).unwrap());
    api.list(&ListParams::default()).await.unwrap();
    assert_eq!(tunnels.load(Ordering::SeqCst), 1);
}
