//! Per-handler resyncs on a fake clock (client-go's `TestListenerResyncPeriods`,
//! `TestResyncCheckPeriod`, `TestSharedInformerWatchDisruption`).

use std::sync::Arc;
use std::time::Duration;

use kube_flowcontrol::clock::FakeClock;

use super::fixtures::{Command, Recorder, informer, pod, run};
use crate::informer::{HandlerRegistration, MINIMUM_RESYNC_PERIOD};

const SECOND: Duration = Duration::from_secs(1);

/// Steps `clock` once the source sleeps until its next resync check.
async fn step(clock: &FakeClock, by: Duration) {
    clock.wait_for_waiters(1).await;
    clock.step(by);
}

/// How many notifications `reg` got in all.
fn received<K: kube_apimachinery::Object + Send + Sync + 'static>(
    reg: &HandlerRegistration<K>,
) -> u64 {
    reg.stats().received
}

#[tokio::test]
async fn listener_resync_periods() {
    let clock = FakeClock::new();
    let (informer, _source) = informer(
        vec![pod("pod1", "1"), pod("pod2", "2")],
        SECOND,
        Some(&clock),
    );
    let l1 = Recorder::new();
    let r1 = informer
        .add_event_handler_with_resync(Arc::clone(&l1), Duration::ZERO)
        .unwrap();
    let l2 = Recorder::new();
    let r2 = informer
        .add_event_handler_with_resync(Arc::clone(&l2), 2 * SECOND)
        .unwrap();
    let l3 = Recorder::new();
    let r3 = informer
        .add_event_handler_with_resync(Arc::clone(&l3), 3 * SECOND)
        .unwrap();
    let (cancel, task) = run(&informer);
    for l in [&l1, &l2, &l3] {
        l.wait_len(2).await;
        assert_eq!(l.names(), ["pod1", "pod2"]);
        l.clear();
    }

    // Two seconds: only listener 2 resyncs.
    step(&clock, SECOND).await;
    step(&clock, SECOND).await;
    l2.wait_len(2).await;
    assert_eq!(l2.names(), ["pod1", "pod2"]);
    assert!(l2.events().iter().all(|e| e.starts_with("update:")));
    // The sync notifications were distributed together: the others got none.
    assert_eq!(received(&r1), 2);
    assert_eq!(received(&r3), 2);
    l2.clear();

    // Three seconds: only listener 3.
    step(&clock, SECOND).await;
    l3.wait_len(2).await;
    assert_eq!(l3.names(), ["pod1", "pod2"]);
    assert_eq!(received(&r1), 2);
    assert_eq!(received(&r2), 4);

    // Four seconds: listener 2 again.
    step(&clock, SECOND).await;
    l2.wait_len(2).await;
    assert_eq!(received(&r1), 2);
    assert_eq!(received(&r3), 4);
    assert!(l1.events().is_empty());
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn resync_check_period() {
    let (informer, _source) = informer(vec![], Duration::from_secs(12 * 3600), None);
    let h1 = informer
        .add_event_handler_with_resync(Recorder::new(), Duration::ZERO)
        .unwrap();
    assert_eq!(
        informer.resync_check_period(),
        Duration::from_secs(12 * 3600)
    );
    assert_eq!(h1.resync_period(), Duration::ZERO);

    let h2 = informer
        .add_event_handler_with_resync(Recorder::new(), 60 * SECOND)
        .unwrap();
    assert_eq!(informer.resync_check_period(), 60 * SECOND);
    assert_eq!(h1.resync_period(), Duration::ZERO);
    assert_eq!(h2.resync_period(), 60 * SECOND);

    let h3 = informer
        .add_event_handler_with_resync(Recorder::new(), 55 * SECOND)
        .unwrap();
    assert_eq!(informer.resync_check_period(), 55 * SECOND);
    assert_eq!(h1.resync_period(), Duration::ZERO);
    assert_eq!(h2.resync_period(), 60 * SECOND);
    assert_eq!(h3.resync_period(), 55 * SECOND);

    let h4 = informer
        .add_event_handler_with_resync(Recorder::new(), 5 * SECOND)
        .unwrap();
    assert_eq!(informer.resync_check_period(), 5 * SECOND);
    assert_eq!(h1.resync_period(), Duration::ZERO);
    assert_eq!(h2.resync_period(), 60 * SECOND);
    assert_eq!(h3.resync_period(), 55 * SECOND);
    assert_eq!(h4.resync_period(), 5 * SECOND);

    // Under the minimum: raised to 1 s, which becomes the check period.
    let h5 = informer
        .add_event_handler_with_resync(Recorder::new(), Duration::from_millis(10))
        .unwrap();
    assert_eq!(h5.resync_period(), MINIMUM_RESYNC_PERIOD);
    assert_eq!(informer.resync_check_period(), MINIMUM_RESYNC_PERIOD);
}

#[tokio::test]
async fn late_handler_with_a_smaller_period_gets_the_check_period() {
    let clock = FakeClock::new();
    let (informer, _source) = informer(vec![pod("pod1", "1")], 10 * SECOND, Some(&clock));
    let (cancel, task) = run(&informer);
    informer.wait_for_sync().await;
    let late = informer
        .add_event_handler_with_resync(Recorder::new(), 2 * SECOND)
        .unwrap();
    assert_eq!(late.resync_period(), 10 * SECOND);
    assert_eq!(informer.resync_check_period(), 10 * SECOND);
    cancel.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn no_resync_when_the_informer_has_no_period() {
    let (informer, _source) = informer(vec![], Duration::ZERO, None);
    let reg = informer
        .add_event_handler_with_resync(Recorder::new(), 5 * SECOND)
        .unwrap();
    // client-go: "the specified resyncPeriod is invalid because this shared informer
    // doesn't support resyncing".
    assert_eq!(reg.resync_period(), Duration::ZERO);
    assert_eq!(informer.resync_check_period(), Duration::ZERO);
}

#[tokio::test]
async fn watch_disruption() {
    let clock = FakeClock::new();
    let (informer, source) = informer(
        vec![pod("pod1", "1"), pod("pod2", "2")],
        SECOND,
        Some(&clock),
    );
    let no_resync = Recorder::new();
    informer
        .add_event_handler_with_resync(Arc::clone(&no_resync), Duration::ZERO)
        .unwrap();
    let resync = Recorder::new();
    informer
        .add_event_handler_with_resync(Arc::clone(&resync), SECOND)
        .unwrap();
    let (cancel, task) = run(&informer);
    for l in [&no_resync, &resync] {
        l.wait_len(2).await;
        assert_eq!(l.names(), ["pod1", "pod2"]);
        l.clear();
    }
    // One second: `resync` is due (and gets a resync now), `no_resync` is not syncing.
    step(&clock, SECOND).await;
    resync.wait_len(2).await;
    resync.clear();
    // A relist after a lost watch: pod2 changed, pod3 appeared, pod1 is unchanged.
    let mut pod2 = pod("pod2", "4");
    pod2.metadata.uid = Some("pod2".into());
    source.send(Command::Replace(vec![
        pod("pod1", "1"),
        pod2,
        pod("pod3", "3"),
    ]));
    no_resync.wait_len(2).await;
    resync.wait_len(3).await;
    assert_eq!(no_resync.names(), ["pod2", "pod3"]);
    assert_eq!(resync.names(), ["pod1", "pod2", "pod3"]);
    cancel.cancel();
    task.await.unwrap();
}
