//! Test objects: client-go's `testFifoObject{name, val}` and `testStoreObject{id, val}` as
//! cluster-scoped ConfigMaps (key = name), the value in `data["val"]`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_apimachinery::Object;
use kube_cache::{Delta, DeltaType, KeyListerGetter};

pub type Obj = ConfigMap;

/// client-go's `mkFifoObj(name, val)`.
pub fn mk(name: &str, val: impl ToString) -> Arc<Obj> {
    let mut cm = ConfigMap::default();
    cm.meta_mut().name = Some(name.into());
    cm.data = Some(BTreeMap::from([("val".to_string(), val.to_string())]));
    Arc::new(cm)
}

/// The value of a test object.
pub fn val(obj: &Obj) -> &str {
    obj.data
        .as_ref()
        .and_then(|d| d.get("val"))
        .map(String::as_str)
        .unwrap_or("")
}

/// A delta with an object.
pub fn d(kind: DeltaType, obj: Arc<Obj>) -> Delta<Obj> {
    Delta::new(kind, obj)
}

/// A `Deleted` tombstone delta.
pub fn tomb(key: &str, obj: Option<Arc<Obj>>) -> Delta<Obj> {
    Delta::tombstone(key, obj)
}

/// client-go's `literalListerGetter`: a fixed list of known objects.
pub struct Literal(pub Vec<Arc<Obj>>);

impl KeyListerGetter<Obj> for Literal {
    fn list_keys(&self) -> Vec<String> {
        self.0.iter().map(|o| o.name().to_string()).collect()
    }

    fn get_by_key(&self, key: &str) -> Option<Arc<Obj>> {
        self.0.iter().find(|o| o.name() == key).cloned()
    }
}

pub fn known(objs: &[Arc<Obj>]) -> Literal {
    Literal(objs.to_vec())
}
