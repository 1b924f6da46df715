//! Discovery: the server version and the groups, versions and resources it serves (legacy
//! discovery endpoints), with resolution from kind or resource name to a [`ResourceInfo`].

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;

use crate::api::ResourceInfo;
use crate::client::Client;
use crate::error::Error;

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

/// One resource the server serves.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every group (`""` for core) with its versions, preferred first.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Every top-level resource (subresources left out) of every group version.
    pub resources: Vec<DiscoveredResource>,
}

impl Client {
    /// The server's version (`/version`).
    pub async fn server_version(&self) -> Result<ServerVersion, Error> {
        self.request(Method::GET).abs_path("/version").json().await
    }

    /// Discovers every group, version and resource (`/api`, `/apis` and each group version).
    pub async fn discover(&self) -> Result<Discovery, Error> {
        let mut discovery = Discovery::default();
        let core: ApiVersions = self.request(Method::GET).abs_path("/api").json().await?;
        let mut group_versions: Vec<(String, String, bool)> = Vec::new();
        for (i, version) in core.versions.iter().enumerate() {
            group_versions.push((String::new(), version.clone(), i == 0));
        }
        discovery
            .groups
            .insert(String::new(), core.versions.clone());
        let groups: ApiGroupList = self.request(Method::GET).abs_path("/apis").json().await?;
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
        for (group, version, preferred) in group_versions {
            let path = if group.is_empty() {
                format!("/api/{version}")
            } else {
                format!("/apis/{group}/{version}")
            };
            let list: ApiResourceList = match self.request(Method::GET).abs_path(&path).json().await
            {
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
                        entry.namespaced,
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
