//! What adding a handler gives back: [`HandlerRegistration`] (client-go's
//! `ResourceEventHandlerRegistration`) and [`EventStream`], the handler shape for async code.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use kube_apimachinery::Object;

use crate::informer::handler::InformerEvent;
use crate::informer::listener::{Listener, ListenerStats};
use crate::informer::processor::{Processor, ProcessorShared};

/// The handle of a handler added to a [`SharedIndexInformer`](super::SharedIndexInformer):
/// tells whether the handler has seen the whole initial list, reports its buffer, removes it.
///
/// Dropping the registration does not remove the handler (as in client-go); dropping an
/// [`EventStream`] does.
pub struct HandlerRegistration<K> {
    pub(crate) listener: Arc<Listener<K>>,
    pub(crate) processor: Weak<ProcessorShared<K>>,
}

impl<K> Clone for HandlerRegistration<K> {
    fn clone(&self) -> Self {
        HandlerRegistration {
            listener: Arc::clone(&self.listener),
            processor: Weak::clone(&self.processor),
        }
    }
}

impl<K> fmt::Debug for HandlerRegistration<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandlerRegistration")
            .field("id", &self.listener.id)
            .finish_non_exhaustive()
    }
}

impl<K: Object + Send + Sync + 'static> HandlerRegistration<K> {
    /// Whether the informer has synced and this handler has handled every `Added` of the
    /// initial list (for a late handler: of the cache's content when it joined) (client-go's
    /// `ResourceEventHandlerRegistration.HasSynced`).
    pub fn has_synced(&self) -> bool {
        self.listener.has_synced()
    }

    /// Waits until [`has_synced`](Self::has_synced).
    pub async fn wait_for_sync(&self) {
        self.listener.wait_for_sync().await
    }

    /// The counters of the handler's buffer (pending notifications, high-water mark,
    /// delivered, dropped).
    pub fn stats(&self) -> ListenerStats {
        self.listener.stats()
    }

    /// The resync period in effect for this handler (zero: no resyncs); it can differ from
    /// the one asked for (client-go's 1 s minimum and resync check period rules).
    pub fn resync_period(&self) -> Duration {
        self.listener.resync_period()
    }

    /// Whether the handler is still registered (removed, or its informer stopped: not).
    pub fn is_active(&self) -> bool {
        !self.listener.is_closed()
    }

    /// Removes the handler from its informer; pending notifications are dropped (and
    /// counted). Returns whether it was registered. Same as
    /// [`SharedIndexInformer::remove_event_handler`](super::SharedIndexInformer::remove_event_handler).
    pub fn remove(&self) -> bool {
        match self.processor.upgrade() {
            Some(shared) => remove(&Processor { shared }, self.listener.id),
            None => {
                self.listener.close();
                false
            }
        }
    }

    pub(crate) fn belongs_to(&self, processor: &Processor<K>) -> bool {
        std::ptr::eq(self.processor.as_ptr(), Arc::as_ptr(&processor.shared))
    }
}

/// Removes a listener while no batch of deltas is being distributed (client-go takes
/// `blockDeltas` for it).
pub(crate) fn remove<K: Object + Send + Sync + 'static>(processor: &Processor<K>, id: u64) -> bool {
    let _block = processor.shared.block_deltas.lock();
    processor.remove_listener(id)
}

/// The notifications of an informer as a [`Stream`], for async code: the same buffer,
/// initial list, resync and `has_synced` rules as a
/// [`ResourceEventHandler`](super::ResourceEventHandler), polled by its owner instead of a task of the informer.
///
/// The stream ends when the informer stops or the registration is removed. Dropping it
/// removes the registration. An initial-list `Added` counts as handled for
/// [`HandlerRegistration::has_synced`] once the stream has yielded it.
pub struct EventStream<K: Object + Send + Sync + 'static> {
    registration: HandlerRegistration<K>,
}

impl<K: Object + Send + Sync + 'static> fmt::Debug for EventStream<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("id", &self.registration.listener.id)
            .finish_non_exhaustive()
    }
}

impl<K: Object + Send + Sync + 'static> EventStream<K> {
    pub(crate) fn new(registration: HandlerRegistration<K>) -> EventStream<K> {
        EventStream { registration }
    }

    /// The registration of this stream (a clone outlives the stream, but the stream's drop
    /// removes it).
    pub fn registration(&self) -> &HandlerRegistration<K> {
        &self.registration
    }
}

impl<K: Object + Send + Sync + 'static> Stream for EventStream<K> {
    type Item = InformerEvent<K>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let listener = &self.registration.listener;
        match listener.poll_next(cx) {
            Poll::Ready(Some(event)) => {
                listener.finished(&event);
                Poll::Ready(Some(event))
            }
            other => other,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.registration.listener.stats().pending, None)
    }
}

impl<K: Object + Send + Sync + 'static> Drop for EventStream<K> {
    fn drop(&mut self) {
        self.registration.remove();
    }
}

/// Something that becomes synced: an informer, a handler registration (client-go's
/// `InformerSynced`, with a way to wait instead of polling).
pub trait CacheSync: Send + Sync {
    /// Whether it has synced.
    fn has_synced(&self) -> bool;
    /// Waits until it has synced.
    fn wait_for_sync(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>>;
}

impl<K: Object + Send + Sync + 'static> CacheSync for HandlerRegistration<K> {
    fn has_synced(&self) -> bool {
        HandlerRegistration::has_synced(self)
    }
    fn wait_for_sync(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(HandlerRegistration::wait_for_sync(self))
    }
}

/// Waits until every one of `syncs` has synced: `true`, or `false` if `cancel` fires first
/// (client-go's `cache.WaitForCacheSync`, without its 100 ms polling).
///
/// ```
/// use tokio_util::sync::CancellationToken;
/// use kube_cache::informer::wait_for_cache_sync;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cancel = CancellationToken::new();
/// assert!(wait_for_cache_sync(&[], &cancel).await);
/// # }
/// ```
pub async fn wait_for_cache_sync(
    syncs: &[&dyn CacheSync],
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    let all = async {
        for sync in syncs {
            sync.wait_for_sync().await;
        }
    };
    tokio::select! {
        biased;
        _ = cancel.cancelled() => syncs.iter().all(|s| s.has_synced()),
        _ = all => true,
    }
}
