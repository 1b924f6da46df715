//! A list answer written item by item from the stored encodings while the connection takes
//! it, instead of built whole: a list of 100,000 realistic pods is 800 MB of JSON, and as
//! `Value`s many times that.
//!
//! The bytes are those of serde_json writing `{"kind", "apiVersion", "metadata", "items"}`
//! (keys in order), and the length is known up front, so the answer keeps its
//! `Content-Length`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, SizeHint};
use serde_json::{Map, Value};

use crate::api::Body;
use crate::registry::ResourceType;
use crate::stored::StoredObject;
use crate::views;

/// How many bytes one frame of a list body holds at most (one item may exceed it).
const CHUNK: usize = 64 * 1024;

/// How an item of the list is written.
#[derive(Clone, Copy)]
enum ItemForm {
    /// The stored encoding as it is (custom resources keep `apiVersion` and `kind`).
    Whole,
    /// Without `apiVersion` and `kind` (built-in kinds).
    Builtin,
}

impl ItemForm {
    fn len(self, object: &StoredObject) -> usize {
        match self {
            ItemForm::Whole => object.json().len(),
            ItemForm::Builtin => object.builtin_item_len(),
        }
    }

    fn write(self, object: &StoredObject, out: &mut BytesMut) {
        match self {
            ItemForm::Whole => out.extend_from_slice(object.json()),
            ItemForm::Builtin => object.write_builtin_item(out),
        }
    }
}

/// The body: the head, the items (comma-separated), the tail.
struct ListBody {
    head: Option<Bytes>,
    items: VecDeque<Arc<StoredObject>>,
    form: ItemForm,
    first_item: bool,
    tail: Option<Bytes>,
    remaining: u64,
}

impl hyper::body::Body for ListBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = &mut *self;
        let mut out = BytesMut::new();
        if let Some(head) = this.head.take() {
            out.extend_from_slice(&head);
        }
        while out.len() < CHUNK {
            let Some(object) = this.items.pop_front() else {
                break;
            };
            if !std::mem::take(&mut this.first_item) {
                out.extend_from_slice(b",");
            }
            this.form.write(&object, &mut out);
        }
        if this.items.is_empty()
            && let Some(tail) = this.tail.take()
        {
            out.extend_from_slice(&tail);
        }
        if out.is_empty() {
            return Poll::Ready(None);
        }
        this.remaining = this.remaining.saturating_sub(out.len() as u64);
        Poll::Ready(Some(Ok(Frame::data(out.freeze()))))
    }

    fn is_end_stream(&self) -> bool {
        self.head.is_none() && self.items.is_empty() && self.tail.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

fn json_bytes(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The list answer of `resource` with these items (in their stored form) and list metadata.
pub fn list_response(
    resource: &ResourceType,
    objects: Vec<Arc<StoredObject>>,
    metadata: &Map<String, Value>,
) -> Response<Body> {
    let mut head = b"{\"apiVersion\":".to_vec();
    head.extend(json_bytes(&resource.api_version()));
    head.extend_from_slice(b",\"items\":[");
    let mut tail = b"],\"kind\":".to_vec();
    tail.extend(json_bytes(&resource.list_kind));
    tail.extend_from_slice(b",\"metadata\":");
    tail.extend(json_bytes(metadata));
    tail.push(b'}');
    let body = if views::is_view(resource) {
        // Converted items (events.k8s.io): encoded here, in one piece.
        let mut out = BytesMut::from(&head[..]);
        for (i, object) in objects.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",");
            }
            out.extend(json_bytes(&views::list_item(resource, &object.value())));
        }
        out.extend_from_slice(&tail);
        Full::new(out.freeze()).boxed_unsync()
    } else {
        let form = if resource.custom {
            ItemForm::Whole
        } else {
            ItemForm::Builtin
        };
        let items_len: usize =
            objects.iter().map(|o| form.len(o)).sum::<usize>() + objects.len().saturating_sub(1);
        let remaining = (head.len() + items_len + tail.len()) as u64;
        ListBody {
            head: Some(Bytes::from(head)),
            items: objects.into(),
            form,
            first_item: true,
            tail: Some(Bytes::from(tail)),
            remaining,
        }
        .boxed_unsync()
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed_unsync()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    async fn body(resource: &ResourceType, objects: &[Value], metadata: &Value) -> Vec<u8> {
        let stored = objects
            .iter()
            .map(|o| Arc::new(StoredObject::encode(o)))
            .collect();
        let response = list_response(resource, stored, metadata.as_object().unwrap());
        let hint = hyper::body::Body::size_hint(response.body()).exact();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        if let Some(hint) = hint {
            assert_eq!(hint, bytes.len() as u64);
        }
        bytes.to_vec()
    }

    /// What the handler wrote before: the list built whole and encoded by serde_json.
    fn whole(resource: &ResourceType, objects: &[Value], metadata: &Value) -> Vec<u8> {
        let items: Vec<Value> = objects
            .iter()
            .map(|o| views::list_item(resource, o))
            .collect();
        serde_json::to_vec(&json!({
            "kind": resource.list_kind,
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn lists_are_the_bytes_of_the_whole_encoding() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        let events = registry.get("events.k8s.io", "v1", "events").unwrap();
        let metadata = json!({"resourceVersion": "7", "continue": "abc", "remainingItemCount": 3});
        let pod = |i: usize| {
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": format!("p{i}"), "namespace": "ns", "labels": {"a": "b"}},
                   "spec": {"containers": [{"name": "c", "image": "i", "args": ["x".repeat(i % 300)]}]}})
        };
        for count in [0, 1, 2, 1000] {
            let objects: Vec<Value> = (0..count).map(pod).collect();
            assert_eq!(
                body(&pods, &objects, &metadata).await,
                whole(&pods, &objects, &metadata),
                "{count} pods"
            );
        }
        let mut custom = (*pods).clone();
        custom.custom = true;
        let objects: Vec<Value> = (0..3).map(pod).collect();
        assert_eq!(
            body(&custom, &objects, &json!({})).await,
            whole(&custom, &objects, &json!({}))
        );
        let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"},
                           "involvedObject": {"name": "p"}, "message": "hi"});
        assert_eq!(
            body(&events, std::slice::from_ref(&event), &metadata).await,
            whole(&events, &[event], &metadata)
        );
    }
}
