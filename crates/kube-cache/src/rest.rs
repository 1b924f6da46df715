//! kube-rest's `Api<K>` as a [`ListerWatcher`](crate::ListerWatcher) (feature `rest`).
