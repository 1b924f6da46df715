//! The `PodSet` custom resource: `spec.replicas` pods made from `spec.template`, with
//! `status.replicas` and `status.readyReplicas`; its CustomResourceDefinition, installed when
//! missing.

use std::time::Duration;

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::RealClock;
use kube_flowcontrol::wait::{WaitError, poll_immediate};
use kube_rest::{Api, Client, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The API group of `PodSet`.
pub const GROUP: &str = "demo.kube-toolkit.dev";
/// The served (and stored) version.
pub const VERSION: &str = "v1";
/// `group/version`.
pub const API_VERSION: &str = "demo.kube-toolkit.dev/v1";
/// The kind.
pub const KIND: &str = "PodSet";
/// The resource (plural) name.
pub const PLURAL: &str = "podsets";
/// The CRD's name: `plural.group`.
pub const CRD_NAME: &str = "podsets.demo.kube-toolkit.dev";
/// The label every pod of a PodSet carries, valued with the PodSet's name.
pub const NAME_LABEL: &str = "demo.kube-toolkit.dev/podset";

fn api_version() -> String {
    API_VERSION.to_string()
}

fn kind() -> String {
    KIND.to_string()
}

/// A set of identical pods (a ReplicaSet without a selector: the pods a PodSet owns are those
/// whose controller ownerReference points at it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSet {
    /// `demo.kube-toolkit.dev/v1`.
    #[serde(default = "api_version")]
    pub api_version: String,
    /// `PodSet`.
    #[serde(default = "kind")]
    pub kind: String,
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What the user wants.
    #[serde(default)]
    pub spec: PodSetSpec,
    /// What the controller last observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodSetStatus>,
}

/// `spec` of a [`PodSet`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSetSpec {
    /// How many pods to run.
    #[serde(default)]
    pub replicas: i32,
    /// The pods to make.
    #[serde(default)]
    pub template: PodTemplateSpec,
}

/// `status` of a [`PodSet`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSetStatus {
    /// Pods owned and not terminating.
    #[serde(default)]
    pub replicas: i32,
    /// Of those, the Ready ones.
    #[serde(default)]
    pub ready_replicas: i32,
    /// The `metadata.generation` this status was computed for.
    #[serde(default)]
    pub observed_generation: i64,
}

impl PodSet {
    /// A PodSet named `name` with `replicas` pods of `template`.
    pub fn new(name: &str, replicas: i32, template: PodTemplateSpec) -> PodSet {
        PodSet {
            api_version: api_version(),
            kind: kind(),
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                ..ObjectMeta::default()
            },
            spec: PodSetSpec { replicas, template },
            status: None,
        }
    }
}

impl k8s_openapi::Resource for PodSet {
    const API_VERSION: &'static str = API_VERSION;
    const GROUP: &'static str = GROUP;
    const KIND: &'static str = KIND;
    const VERSION: &'static str = VERSION;
    const URL_PATH_SEGMENT: &'static str = PLURAL;
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::ListableResource for PodSet {
    const LIST_KIND: &'static str = "PodSetList";
}

impl k8s_openapi::Metadata for PodSet {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The CustomResourceDefinition of `PodSet`: namespaced, short name `ps`, the status
/// subresource, and printer columns for `kubectl get podsets`.
pub fn crd() -> CustomResourceDefinition {
    // ok: a constant document that matches the type (the `crd_names_the_resource` test)
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": PLURAL,
                "singular": "podset",
                "kind": KIND,
                "listKind": "PodSetList",
                "shortNames": ["ps"],
            },
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Desired", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Current", "type": "integer", "jsonPath": ".status.replicas"},
                    {"name": "Ready", "type": "integer", "jsonPath": ".status.readyReplicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["replicas", "template"],
                            "properties": {
                                "replicas": {"type": "integer", "minimum": 0},
                                "template": {
                                    "type": "object",
                                    "x-kubernetes-preserve-unknown-fields": true,
                                },
                            },
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "replicas": {"type": "integer"},
                                "readyReplicas": {"type": "integer"},
                                "observedGeneration": {"type": "integer", "format": "int64"},
                            },
                        },
                    },
                }},
            }],
        },
    }))
    // ok: a literal of this file, checked by the tests and every demo run.
    .expect("the PodSet CRD is a valid CustomResourceDefinition")
}

/// Whether the CRD was found or created by [`install_crd`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// It was there already.
    Found,
    /// It was created (and is now served).
    Created,
}

/// Why the CRD could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// The API server refused or failed a request.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: &'static str,
        /// The server's error.
        #[source]
        source: kube_rest::Error,
    },
    /// The CRD exists but its resource is not served in time.
    #[error("the CRD {CRD_NAME} is not Established after {0:?}")]
    NotEstablished(Duration),
}

fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Creates the PodSet CRD unless it exists, then waits (at most `timeout`) until it is
/// Established and PodSets can be listed.
pub async fn install_crd(client: &Client, timeout: Duration) -> Result<Installed, CrdError> {
    let crds: Api<CustomResourceDefinition> = Api::cluster(client.clone());
    let existing = crds
        .get_opt(CRD_NAME)
        .await
        .map_err(|source| CrdError::Api {
            what: "reading the PodSet CRD",
            source,
        })?;
    let installed = match existing {
        Some(_) => Installed::Found,
        None => match crds.create(&PostParams::default(), &crd()).await {
            Ok(_) => Installed::Created,
            // Another replica won the race.
            Err(e) if e.is_already_exists() => Installed::Found,
            Err(source) => {
                return Err(CrdError::Api {
                    what: "creating the PodSet CRD",
                    source,
                });
            }
        },
    };
    let podsets: Api<PodSet> = Api::all_namespaces(client.clone());
    let (crds, podsets) = (&crds, &podsets);
    // Established, and the resource answers (client-go's wait.PollImmediate).
    let served = poll_immediate(
        &RealClock,
        Duration::from_millis(100),
        timeout,
        || async move {
            let crd = crds.get(CRD_NAME).await?;
            Ok::<_, kube_rest::Error>(
                established(&crd)
                    && podsets
                        .list(&kube_rest::ListParams::default().limit(1))
                        .await
                        .is_ok(),
            )
        },
    )
    .await;
    match served {
        Ok(()) => Ok(installed),
        Err(WaitError::Condition(source)) => Err(CrdError::Api {
            what: "reading the PodSet CRD",
            source,
        }),
        Err(_) => Err(CrdError::NotEstablished(timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crd_names_the_resource() {
        let crd = crd();
        assert_eq!(crd.metadata.name.as_deref(), Some(CRD_NAME));
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.names.kind, KIND);
        assert_eq!(crd.spec.versions[0].name, VERSION);
        assert!(crd.spec.versions[0].subresources.is_some());
    }

    #[test]
    fn podset_round_trips_with_its_kind() {
        let podset = PodSet::new("web", 3, PodTemplateSpec::default());
        let value = serde_json::to_value(&podset).unwrap();
        assert_eq!(value["apiVersion"], API_VERSION);
        assert_eq!(value["kind"], KIND);
        assert_eq!(value["spec"]["replicas"], 3);
        let back: PodSet = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "template": {}},
            "status": {"readyReplicas": 1},
        }))
        .unwrap();
        assert_eq!(back.kind, KIND);
        assert_eq!(back.status.unwrap().ready_replicas, 1);
    }
}
