//! Discovery: the server version and the groups, versions and resources it serves (aggregated
//! discovery when the server offers it, the legacy endpoints otherwise), with resolution from
//! kind or resource name to a [`ResourceInfo`].

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http::Method;
use kube_flowcontrol::clock::{RealClock, SharedClock};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::Error;
use kube_apimachinery::{ResourceInfo, Scope};

/// The answer of `/version`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerVersion {
    /// The major version (`"1"`).
    #[serde(default)]
    pub major: String,
    /// The minor version (`"30"`, sometimes with a `+`).
    #[serde(default)]
    pub minor: String,
    /// The full version (`v1.30.2`).
    #[serde(default)]
    pub git_version: String,
    /// `os/arch`.
    #[serde(default)]
    pub platform: String,
}

#[derive(Deserialize)]
struct ApiVersions {
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
struct GroupVersionForDiscovery {
    version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiGroup {
    name: String,
    #[serde(default)]
    versions: Vec<GroupVersionForDiscovery>,
    #[serde(default)]
    preferred_version: Option<GroupVersionForDiscovery>,
}

#[derive(Deserialize)]
struct ApiGroupList {
    #[serde(default)]
    groups: Vec<ApiGroup>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResourceEntry {
    name: String,
    #[serde(default)]
    singular_name: String,
    #[serde(default)]
    namespaced: bool,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    short_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct ApiResourceList {
    #[serde(default)]
    resources: Vec<ApiResourceEntry>,
}

const AGGREGATED_ACCEPT: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";

#[derive(Deserialize)]
struct AggregatedList {
    #[serde(default)]
    items: Vec<AggregatedGroup>,
}

#[derive(Deserialize, Default)]
struct AggregatedMeta {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct AggregatedGroup {
    #[serde(default)]
    metadata: AggregatedMeta,
    #[serde(default)]
    versions: Vec<AggregatedVersion>,
}

#[derive(Deserialize)]
struct AggregatedVersion {
    version: String,
    #[serde(default)]
    resources: Vec<AggregatedResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AggregatedResource {
    resource: String,
    #[serde(default)]
    response_kind: Option<AggregatedKind>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    singular_resource: String,
    #[serde(default)]
    verbs: Vec<String>,
    #[serde(default)]
    short_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct AggregatedKind {
    #[serde(default)]
    kind: String,
}

/// One resource the server serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscoveredResource {
    /// Where it is served.
    pub info: ResourceInfo,
    /// The singular name (`deployment`).
    pub singular: String,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// The verbs it supports (`get`, `list`, `watch`...).
    pub verbs: Vec<String>,
    /// Whether this version is the group's preferred one.
    pub preferred: bool,
}

/// What the server serves, from one discovery pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// Whether the server answered with aggregated discovery (`apidiscovery.k8s.io/v2`: two
    /// requests) rather than the legacy endpoints (one request per group version).
    pub aggregated: bool,
    /// Every group (`""` for core) with its versions, preferred first.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Every top-level resource (subresources left out) of every group version.
    pub resources: Vec<DiscoveredResource>,
}

impl Client {
    /// The server's version (`/version`).
    pub async fn server_version(&self) -> Result<ServerVersion, Error> {
        self.request(Method::GET)
            .discovery()
            .abs_path("/version")
            .json()
            .await
    }

    /// Discovers every group, version and resource: aggregated discovery (`/api` and `/apis`)
    /// when the server offers it, else `/api`, `/apis` and each group version.
    pub async fn discover(&self) -> Result<Discovery, Error> {
        if let Some(discovery) = self.discover_aggregated().await? {
            return Ok(discovery);
        }
        self.discover_legacy().await
    }

    async fn aggregated_document(&self, path: &str) -> Result<Option<AggregatedList>, Error> {
        let response = self
            .request(Method::GET)
            .discovery()
            .abs_path(path)
            .accept(AGGREGATED_ACCEPT)
            .send_streaming()
            .await?;
        let aggregated = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.contains("g=apidiscovery.k8s.io") && ct.contains("v=v2"));
        let body = response.into_body().bytes().await?;
        if !aggregated {
            return Ok(None);
        }
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| Error::decode(format!("aggregated discovery {path}"), e))
    }

    /// Aggregated discovery only (`apidiscovery.k8s.io/v2`); `None` when the server does not
    /// offer it.
    pub async fn discover_aggregated(&self) -> Result<Option<Discovery>, Error> {
        let Some(core) = self.aggregated_document("/api").await? else {
            return Ok(None);
        };
        let Some(groups) = self.aggregated_document("/apis").await? else {
            return Ok(None);
        };
        let mut discovery = Discovery {
            aggregated: true,
            ..Discovery::default()
        };
        for group in core.items.into_iter().chain(groups.items) {
            let name = group.metadata.name;
            let mut versions = Vec::new();
            // The first version listed is the preferred one.
            for (i, version) in group.versions.into_iter().enumerate() {
                for resource in version.resources {
                    let kind = resource.response_kind.map(|k| k.kind).unwrap_or_default();
                    discovery.resources.push(DiscoveredResource {
                        info: ResourceInfo::new(
                            &name,
                            &version.version,
                            &kind,
                            &resource.resource,
                            if resource.scope == "Namespaced" {
                                Scope::Namespaced
                            } else {
                                Scope::Cluster
                            },
                        ),
                        singular: resource.singular_resource,
                        short_names: resource.short_names.unwrap_or_default(),
                        verbs: resource.verbs,
                        preferred: i == 0,
                    });
                }
                versions.push(version.version);
            }
            discovery.groups.insert(name, versions);
        }
        Ok(Some(discovery))
    }

    /// Legacy discovery only (`/api`, `/apis` and one request per group version).
    pub async fn discover_legacy(&self) -> Result<Discovery, Error> {
        let mut discovery = Discovery::default();
        let core: ApiVersions = self
            .request(Method::GET)
            .discovery()
            .abs_path("/api")
            .json()
            .await?;
        let mut group_versions: Vec<(String, String, bool)> = Vec::new();
        for (i, version) in core.versions.iter().enumerate() {
            group_versions.push((String::new(), version.clone(), i == 0));
        }
        discovery
            .groups
            .insert(String::new(), core.versions.clone());
        let groups: ApiGroupList = self
            .request(Method::GET)
            .discovery()
            .abs_path("/apis")
            .json()
            .await?;
        for group in groups.groups {
            let preferred = group.preferred_version.as_ref().map(|p| p.version.clone());
            let mut versions: Vec<String> =
                group.versions.iter().map(|v| v.version.clone()).collect();
            if let Some(p) = &preferred {
                versions.sort_by_key(|v| v != p);
            }
            for version in &versions {
                let is_preferred = preferred
                    .as_ref()
                    .map_or(version == &versions[0], |p| p == version);
                group_versions.push((group.name.clone(), version.clone(), is_preferred));
            }
            discovery.groups.insert(group.name, versions);
        }
        // One request per group version, all at once (client-go's discovery client runs them
        // in parallel too); the discovery throttle paces them.
        let lists = futures_util::future::join_all(group_versions.iter().map(
            |(group, version, _)| async move {
                let path = if group.is_empty() {
                    format!("/api/{version}")
                } else {
                    format!("/apis/{group}/{version}")
                };
                let list = self
                    .request(Method::GET)
                    .discovery()
                    .abs_path(&path)
                    .json::<ApiResourceList>()
                    .await;
                (path, list)
            },
        ))
        .await;
        for ((group, version, preferred), (path, list)) in group_versions.into_iter().zip(lists) {
            let list = match list {
                Ok(list) => list,
                // An aggregated API that is down must not hide the rest (kubectl warns too).
                Err(e) if e.is_not_found() || e.is_server_error() => {
                    tracing::warn!(%path, error = %e, "discovery of a group version failed, skipped");
                    continue;
                }
                Err(e) => return Err(e),
            };
            for entry in list.resources.into_iter().filter(|r| !r.name.contains('/')) {
                discovery.resources.push(DiscoveredResource {
                    info: ResourceInfo::new(
                        &group,
                        &version,
                        &entry.kind,
                        &entry.name,
                        if entry.namespaced {
                            Scope::Namespaced
                        } else {
                            Scope::Cluster
                        },
                    ),
                    singular: entry.singular_name,
                    short_names: entry.short_names.unwrap_or_default(),
                    verbs: entry.verbs,
                    preferred,
                });
            }
        }
        Ok(discovery)
    }
}

impl Discovery {
    /// The resource of a kind in a group, in the group's preferred version (or the first
    /// version serving it).
    pub fn resolve_kind(&self, group: &str, kind: &str) -> Option<&ResourceInfo> {
        let mut candidates = self
            .resources
            .iter()
            .filter(|r| r.info.group == group && r.info.kind == kind);
        let first = candidates.next()?;
        if first.preferred {
            return Some(&first.info);
        }
        Some(&candidates.find(|r| r.preferred).unwrap_or(first).info)
    }

    /// The resource of a group, version and kind.
    pub fn resolve_gvk(&self, group: &str, version: &str, kind: &str) -> Option<&ResourceInfo> {
        self.resources
            .iter()
            .find(|r| r.info.group == group && r.info.version == version && r.info.kind == kind)
            .map(|r| &r.info)
    }

    /// The resource a kubectl-style name designates: plural, singular, short name or kind,
    /// optionally qualified by group (`deployments.apps`, `deploy`), preferred versions first.
    pub fn resolve_name(&self, name: &str) -> Option<&ResourceInfo> {
        let (name, group) = match name.split_once('.') {
            Some((name, group)) => (name, Some(group)),
            None => (name, None),
        };
        let lower = name.to_ascii_lowercase();
        let matches = |r: &&DiscoveredResource| {
            group.is_none_or(|g| r.info.group == g)
                && (r.info.plural == lower
                    || r.singular == lower
                    || r.info.kind.to_ascii_lowercase() == lower
                    || r.short_names.contains(&lower))
        };
        // Core and preferred versions first, as kubectl's RESTMapper orders them.
        self.resources
            .iter()
            .filter(matches)
            .min_by_key(|r| (!r.preferred, !r.info.group.is_empty()))
            .map(|r| &r.info)
    }
}

/// A discovery result kept on disk, as kubectl keeps `~/.kube/cache/discovery`: reused while
/// younger than the TTL (10 minutes by default), fetched again when older, unreadable, or when
/// a name or kind is not found in it.
///
/// The cache is one JSON file per server (not kubectl's file layout).
#[derive(Debug, Clone)]
pub struct DiscoveryCache {
    dir: PathBuf,
    ttl: Duration,
    clock: SharedClock,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CacheFile {
    fetched_at_unix_seconds: u64,
    discovery: Discovery,
}

impl DiscoveryCache {
    /// A cache in `dir` (one file per server inside it).
    pub fn new(dir: impl Into<PathBuf>) -> DiscoveryCache {
        DiscoveryCache {
            dir: dir.into(),
            ttl: Duration::from_secs(600),
            clock: RealClock::shared(),
        }
    }

    /// A cache in kubectl's place, `~/.kube/cache/discovery` (`None` without a home directory).
    pub fn in_home() -> Option<DiscoveryCache> {
        std::env::home_dir()
            .map(|home| DiscoveryCache::new(home.join(".kube").join("cache").join("discovery")))
    }

    /// Sets how long a result is reused.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Uses this clock for the age of results.
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The file holding the result for `client`'s server.
    pub fn path_for(&self, client: &Client) -> PathBuf {
        let server = client.base_url();
        let server = server
            .split_once("://")
            .map_or(server.as_str(), |(_, rest)| rest);
        let name: String = server
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.dir.join(name).join("discovery.json")
    }

    fn now_seconds(&self) -> u64 {
        self.clock
            .wall_now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// The cached result when it is readable and young enough (read through tokio's blocking
    /// pool).
    async fn read(&self, path: &Path) -> Option<Discovery> {
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => bytes,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "no discovery cache, fetching");
                return None;
            }
        };
        let file: CacheFile = match serde_json::from_slice(&bytes) {
            Ok(file) => file,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "discovery cache unreadable, fetching again");
                return None;
            }
        };
        let age = self
            .now_seconds()
            .saturating_sub(file.fetched_at_unix_seconds);
        (age < self.ttl.as_secs()).then_some(file.discovery)
    }

    /// The cached discovery of `client`'s server, fetched again when stale or unreadable.
    pub async fn discovery(&self, client: &Client) -> Result<Discovery, Error> {
        if let Some(discovery) = self.read(&self.path_for(client)).await {
            return Ok(discovery);
        }
        self.refresh(client).await
    }

    /// Fetches the discovery again and stores it (a failure to store is logged, not returned).
    pub async fn refresh(&self, client: &Client) -> Result<Discovery, Error> {
        let discovery = client.discover().await?;
        let path = self.path_for(client);
        let file = CacheFile {
            fetched_at_unix_seconds: self.now_seconds(),
            discovery,
        };
        // Serialize here, write on the blocking pool (directory, temporary file, rename).
        let stored = match serde_json::to_vec(&file) {
            Ok(bytes) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
            Err(e) => Err(std::io::Error::other(e)),
        };
        if let Err(e) = stored {
            tracing::warn!(path = %path.display(), error = %e, "could not store the discovery cache");
        }
        Ok(file.discovery)
    }

    /// Resolves a kubectl-style name, fetching the discovery again once on a miss.
    pub async fn resolve_name(
        &self,
        client: &Client,
        name: &str,
    ) -> Result<Option<ResourceInfo>, Error> {
        if let Some(info) = self.discovery(client).await?.resolve_name(name) {
            return Ok(Some(info.clone()));
        }
        Ok(self.refresh(client).await?.resolve_name(name).cloned())
    }

    /// Resolves a kind of a group, fetching the discovery again once on a miss.
    pub async fn resolve_kind(
        &self,
        client: &Client,
        group: &str,
        kind: &str,
    ) -> Result<Option<ResourceInfo>, Error> {
        if let Some(info) = self.discovery(client).await?.resolve_kind(group, kind) {
            return Ok(Some(info.clone()));
        }
        Ok(self
            .refresh(client)
            .await?
            .resolve_kind(group, kind)
            .cloned())
    }
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path` (blocking).
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temporary = dir.join(format!(".discovery.{}.{n}.tmp", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}
