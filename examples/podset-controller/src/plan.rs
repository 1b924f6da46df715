//! What one reconcile does, decided from the cache and the pending writes alone (no I/O):
//! which pods to create, which to delete, and the status to report.
//!
//! Pods are named `<podset>-<index>`, the lowest free index first (as a StatefulSet names
//! them): a name is never reused while a pod of that name exists (even terminating), so two
//! writers that both believe a pod is missing create the same name and the API server lets
//! only one through. That is what keeps a replica that lost its lease, or a worker whose cache
//! is behind, from making duplicates.

use std::collections::HashSet;

use crate::expectations::PendingWrites;

/// What the plan needs of a cached pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodView {
    /// `metadata.name`.
    pub name: String,
    /// The Ready condition is True.
    pub ready: bool,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
}

/// The outcome of [`plan`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Names of the pods to create.
    pub create: Vec<String>,
    /// Names of the pods to delete.
    pub delete: Vec<String>,
    /// Pods that count toward `spec.replicas` now: cached, not terminating, not being
    /// deleted, plus creations the cache does not show yet.
    pub active: usize,
    /// Of the cached active pods, the Ready ones.
    pub ready: usize,
}

/// The index of a pod named `<podset>-<index>`.
pub fn index_of(podset: &str, pod: &str) -> Option<u64> {
    pod.strip_prefix(podset)?.strip_prefix('-')?.parse().ok()
}

/// Plans a reconcile of the PodSet `podset` wanting `replicas` pods, given the pods the cache
/// holds for it and the writes still pending. At most `burst` creations are planned at once
/// (the rest come at the next reconcile, as client-go's `burstReplicas`).
pub fn plan(
    podset: &str,
    replicas: usize,
    pods: &[PodView],
    pending: &PendingWrites,
    burst: usize,
) -> Plan {
    let cached: HashSet<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    let mut active: Vec<&PodView> = pods
        .iter()
        .filter(|p| !p.terminating && !pending.deleting.contains(&p.name))
        .collect();
    let unseen_creations = pending
        .creating
        .iter()
        .filter(|name| !cached.contains(name.as_str()))
        .count();
    let count = active.len() + unseen_creations;
    let ready = active.iter().filter(|p| p.ready).count();
    let mut result = Plan {
        active: count,
        ready,
        ..Plan::default()
    };
    if count < replicas {
        let wanted = (replicas - count).min(burst);
        let mut index = 0u64;
        while result.create.len() < wanted {
            let name = format!("{podset}-{index}");
            if !cached.contains(name.as_str())
                && !pending.creating.contains(&name)
                && !pending.taken.contains(&name)
            {
                result.create.push(name);
            }
            index += 1;
        }
    } else if count > replicas {
        // Only pods the cache shows can be chosen; an excess made of unseen creations waits
        // for the informer. Not Ready first, then the highest index (names not of our form
        // last of all), as a ReplicaSet scales down the least useful pods first.
        let excess = count - replicas;
        active.sort_by(|a, b| {
            let rank = |p: &PodView| (p.ready, index_of(podset, &p.name).map(|i| u64::MAX - i));
            rank(a).cmp(&rank(b)).then_with(|| b.name.cmp(&a.name))
        });
        result.delete = active.iter().take(excess).map(|p| p.name.clone()).collect();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ready: bool) -> PodView {
        PodView {
            name: name.into(),
            ready,
            terminating: false,
        }
    }

    fn pending(creating: &[&str], deleting: &[&str]) -> PendingWrites {
        PendingWrites {
            creating: creating.iter().map(|s| s.to_string()).collect(),
            deleting: deleting.iter().map(|s| s.to_string()).collect(),
            taken: Default::default(),
        }
    }

    #[test]
    fn taken_names_are_skipped() {
        let mut p = pending(&[], &[]);
        p.taken.insert("web-0".into());
        assert_eq!(plan("web", 2, &[], &p, 100).create, ["web-1", "web-2"]);
    }

    #[test]
    fn creates_the_lowest_free_names() {
        let p = plan("web", 3, &[pod("web-1", true)], &pending(&[], &[]), 100);
        assert_eq!(p.create, ["web-0", "web-2"]);
        assert_eq!((p.active, p.ready), (1, 1));
    }

    #[test]
    fn pending_creations_count_and_their_names_are_taken() {
        let p = plan("web", 3, &[], &pending(&["web-0"], &[]), 100);
        assert_eq!(p.create, ["web-1", "web-2"]);
        assert_eq!(p.active, 1);
    }

    #[test]
    fn terminating_pods_do_not_count_but_keep_their_name() {
        let mut gone = pod("web-0", true);
        gone.terminating = true;
        let p = plan("web", 1, &[gone], &pending(&[], &[]), 100);
        assert_eq!(p.create, ["web-1"]);
    }

    #[test]
    fn pending_deletions_do_not_count() {
        let pods = [pod("web-0", true), pod("web-1", true)];
        let p = plan("web", 2, &pods, &pending(&[], &["web-1"]), 100);
        assert_eq!(p.create, ["web-2"]);
        assert!(p.delete.is_empty());
    }

    #[test]
    fn deletes_unready_then_highest() {
        let pods = [
            pod("web-0", true),
            pod("web-1", false),
            pod("web-2", true),
            pod("web-3", true),
        ];
        let p = plan("web", 2, &pods, &pending(&[], &[]), 100);
        assert_eq!(p.delete, ["web-1", "web-3"]);
    }

    #[test]
    fn burst_limits_creations() {
        let p = plan("web", 10, &[], &pending(&[], &[]), 4);
        assert_eq!(p.create.len(), 4);
    }

    #[test]
    fn an_excess_of_unseen_creations_waits() {
        let p = plan("web", 0, &[], &pending(&["web-0"], &[]), 100);
        assert!(p.delete.is_empty() && p.create.is_empty());
    }

    #[test]
    fn converges_from_any_start() {
        // Any set of pods (some terminating, some foreign names): after applying the plan the
        // active count is the wanted one, and no name is used twice.
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        for _ in 0..500 {
            let replicas = next() % 8;
            let mut pods = Vec::new();
            for i in 0..next() % 10 {
                let name = if next() % 5 == 0 {
                    format!("web-x{i}")
                } else {
                    format!("web-{}", next() % 12)
                };
                if pods.iter().any(|p: &PodView| p.name == name) {
                    continue;
                }
                pods.push(PodView {
                    name,
                    ready: next() % 2 == 0,
                    terminating: next() % 4 == 0,
                });
            }
            let p = plan("web", replicas, &pods, &pending(&[], &[]), 100);
            let after = p.active + p.create.len() - p.delete.len();
            assert_eq!(after, replicas, "{pods:?} -> {p:?}");
            for name in &p.create {
                assert!(!pods.iter().any(|q| &q.name == name), "{name} reused");
            }
            for name in &p.delete {
                assert!(pods.iter().any(|q| &q.name == name && !q.terminating));
            }
        }
    }
}
