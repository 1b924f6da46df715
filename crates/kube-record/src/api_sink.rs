//! The body shared by `RestSink` and `KubeSink`: kube-rest's
//! and kube-rs's `Api<E>` have the same shape (`namespaced`, `create`, `replace`, `patch` with
//! the same parameter types by name), so one macro writes both implementations.

/// Implements an event-sink trait (`$trait`, for events of type `$event`) for `$sink`, whose
/// `client` field builds an `Api<$event>`. `Api`, `PostParams`, `PatchParams`, `Patch`,
/// `Value`, `Object` and `namespace_of` are taken from the invoking module (kube-rest's or
/// kube-rs's types), as is the `sink_error` function that maps the client's error.
macro_rules! api_sink_impl {
    ($sink:ty, $trait:path, $event:ty) => {
        impl $trait for $sink {
            async fn create(&self, event: &$event) -> Result<$event, SinkError> {
                let namespace = namespace_of(event, "create")?;
                Api::<$event>::namespaced(self.client.clone(), namespace)
                    .create(&PostParams::default(), event)
                    .await
                    .map_err(sink_error)
            }

            async fn update(&self, event: &$event) -> Result<$event, SinkError> {
                let namespace = namespace_of(event, "update")?;
                Api::<$event>::namespaced(self.client.clone(), namespace)
                    .replace(event.name(), &PostParams::default(), event)
                    .await
                    .map_err(sink_error)
            }

            async fn patch(&self, event: &$event, patch: &Value) -> Result<$event, SinkError> {
                let namespace = namespace_of(event, "patch")?;
                Api::<$event>::namespaced(self.client.clone(), namespace)
                    .patch(
                        event.name(),
                        &PatchParams::default(),
                        &Patch::Strategic(patch),
                    )
                    .await
                    .map_err(sink_error)
            }
        }
    };
}
