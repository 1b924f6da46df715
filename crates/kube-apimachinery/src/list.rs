//! A page of a list and its metadata.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A page of a list (`PodList`, `ConfigMapList`...): its metadata and its items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: DeserializeOwned", serialize = "K: Serialize"))]
pub struct ObjectList<K> {
    /// The list's metadata (resourceVersion and continue token).
    #[serde(default)]
    pub metadata: ListMeta,
    /// The objects.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<K>,
}

impl<K> Default for ObjectList<K> {
    fn default() -> Self {
        ObjectList {
            metadata: ListMeta::default(),
            items: Vec::new(),
        }
    }
}

impl<K> ObjectList<K> {
    /// The resourceVersion the list was served at (`None` when the server sent none).
    pub fn resource_version(&self) -> Option<&str> {
        self.metadata
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty())
    }

    /// The token of the next page, `None` on the last page.
    pub fn continue_token(&self) -> Option<&str> {
        self.metadata
            .continue_token
            .as_deref()
            .filter(|t| !t.is_empty())
    }
}

impl<K> IntoIterator for ObjectList<K> {
    type Item = K;
    type IntoIter = std::vec::IntoIter<K>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// The metadata of a list (`metav1.ListMeta`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The resourceVersion the list was served at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The token of the next page, when there is one.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// How many items remain after this page (an estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

#[cfg(all(test, feature = "k8s-openapi"))]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[test]
    fn decodes_a_page_and_null_items() {
        let page: ObjectList<Pod> = serde_json::from_str(
            r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"12","continue":"abc","remainingItemCount":3},"items":[{"metadata":{"name":"a"}}]}"#,
        )
        .unwrap();
        assert_eq!(page.resource_version(), Some("12"));
        assert_eq!(page.continue_token(), Some("abc"));
        assert_eq!(page.metadata.remaining_item_count, Some(3));
        assert_eq!(page.items.len(), 1);
        let empty: ObjectList<Pod> = serde_json::from_str(
            r#"{"metadata":{"resourceVersion":"1","continue":""},"items":null}"#,
        )
        .unwrap();
        assert!(empty.items.is_empty());
        assert_eq!(empty.continue_token(), None);
    }
}
