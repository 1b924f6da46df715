//! [`ConfigMapLock`] and [`EndpointsLock`]: the record in an annotation.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{ConfigMap, Endpoints};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::{NamespaceResourceScope, Resource};
use kube_apimachinery::Object;
use kube_rest::{Api, ApiResource, PostParams};

use super::{api_error, describe};
use crate::lock::{Lock, LockError, Observed};
use crate::record::{LEADER_ELECTION_RECORD_ANNOTATION, LeaderElectionRecord};

/// A lock keeping the record as JSON in the `control-plane.alpha.kubernetes.io/leader`
/// annotation of an object (client-go's `configMapLock` and `endpointsLock`).
///
/// An object without the annotation reads as an empty record (free to take); an annotation
/// that is not a record is an error ([`LockError::InvalidRecord`]).
pub struct AnnotationLock<K> {
    api: Api<K>,
    name: String,
    identity: String,
    description: String,
}

/// The record in a `ConfigMap`'s annotation.
pub type ConfigMapLock = AnnotationLock<ConfigMap>;
/// The record in an `Endpoints`' annotation.
pub type EndpointsLock = AnnotationLock<Endpoints>;

impl<K> fmt::Debug for AnnotationLock<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnnotationLock")
            .field("lock", &self.description)
            .field("identity", &self.identity)
            .finish()
    }
}

impl<K> Clone for AnnotationLock<K> {
    fn clone(&self) -> Self {
        AnnotationLock {
            api: self.api.clone(),
            name: self.name.clone(),
            identity: self.identity.clone(),
            description: self.description.clone(),
        }
    }
}

impl<K: ApiResource + Resource<Scope = NamespaceResourceScope>> AnnotationLock<K> {
    /// A lock on the object `name` of `api`'s namespace, for the candidate `identity`.
    pub fn new(api: Api<K>, name: impl Into<String>, identity: impl Into<String>) -> Self {
        let name = name.into();
        AnnotationLock {
            description: describe(api.namespace(), &name),
            api,
            name,
            identity: identity.into(),
        }
    }
}

impl<K> Lock for AnnotationLock<K>
where
    K: ApiResource + Resource<Scope = NamespaceResourceScope> + Default + Sync,
{
    type Version = K;

    async fn get(&self) -> Result<Option<Observed<K>>, LockError> {
        let object = match self.api.get(&self.name).await {
            Ok(object) => object,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(api_error(&self.description, e)),
        };
        let raw = object
            .annotations()
            .get(LEADER_ELECTION_RECORD_ANNOTATION)
            .cloned();
        let record = match &raw {
            None => LeaderElectionRecord::default(),
            Some(text) => LeaderElectionRecord::from_annotation(text).map_err(|source| {
                LockError::InvalidRecord {
                    lock: self.description.clone(),
                    source,
                }
            })?,
        };
        Ok(Some(Observed {
            record,
            raw: raw.unwrap_or_default(),
            version: object,
        }))
    }

    async fn create(&self, record: &LeaderElectionRecord) -> Result<K, LockError> {
        let mut object = K::default();
        *object.meta_mut() = ObjectMeta {
            name: Some(self.name.clone()),
            namespace: self.api.namespace().map(str::to_string),
            annotations: Some(BTreeMap::from([(
                LEADER_ELECTION_RECORD_ANNOTATION.to_string(),
                record.to_annotation(),
            )])),
            ..ObjectMeta::default()
        };
        self.api
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| api_error(&self.description, e))
    }

    async fn update(&self, version: &K, record: &LeaderElectionRecord) -> Result<K, LockError> {
        let mut object = version.clone();
        object
            .meta_mut()
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(
                LEADER_ELECTION_RECORD_ANNOTATION.to_string(),
                record.to_annotation(),
            );
        self.api
            .replace(&self.name, &PostParams::default(), &object)
            .await
            .map_err(|e| api_error(&self.description, e))
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}
