//! The processor and listeners alone (client-go's `processor_listener_test.go` and the
//! distribution rules of `sharedProcessor`).

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_flowcontrol::clock::FakeClock;

use super::fixtures::{Recorder, eventually, pod};
use crate::DeltaFifo;
use crate::informer::InformerEvent;
use crate::informer::listener::{Listener, Sink};
use crate::informer::processor::Processor;

fn add(name: &str) -> InformerEvent<Pod> {
    InformerEvent::Added {
        object: Arc::new(pod(name, "1")),
        is_in_initial_list: false,
    }
}

fn listener(
    processor: &Processor<Pod>,
    handler: Arc<Recorder>,
    period: Duration,
    clock: &FakeClock,
) -> Arc<Listener<Pod>> {
    let fifo = DeltaFifo::<Pod>::default();
    fifo.replace(Vec::<Pod>::new(), "");
    use kube_flowcontrol::clock::Clock;
    Arc::new(Listener::new(
        processor.next_id(),
        Sink::Handler(handler),
        period,
        period,
        clock.now(),
        fifo,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_delivers_many_notifications_from_concurrent_adders() {
    // client-go's BenchmarkListener, as a test: 5 concurrent adders.
    let clock = FakeClock::new();
    let processor = Processor::<Pod>::new(clock.shared());
    let recorder = Recorder::new();
    let l = listener(&processor, Arc::clone(&recorder), Duration::ZERO, &clock);
    processor.add_listener(Arc::clone(&l));
    processor.start(tokio::runtime::Handle::current());
    let adders: Vec<_> = (0..5)
        .map(|t| {
            let l = Arc::clone(&l);
            std::thread::spawn(move || {
                for i in 0..2000 {
                    l.add(add(&format!("t{t}-{i}")));
                }
            })
        })
        .collect();
    for a in adders {
        a.join().unwrap();
    }
    recorder.wait_len(10_000).await;
    // Per adder, order is kept.
    let events = recorder.events();
    for t in 0..5 {
        let mine: Vec<_> = events
            .iter()
            .filter(|e| e.starts_with(&format!("add:t{t}-")))
            .collect();
        let expected: Vec<String> = (0..2000).map(|i| format!("add:t{t}-{i}")).collect();
        assert_eq!(mine.len(), 2000);
        assert!(mine.iter().zip(&expected).all(|(a, b)| *a == b));
    }
    processor.stop().await;
}

#[tokio::test]
async fn sync_notifications_go_to_syncing_listeners_only() {
    let clock = FakeClock::new();
    let processor = Processor::<Pod>::new(clock.shared());
    let (r1, r2) = (Recorder::new(), Recorder::new());
    let l1 = listener(&processor, Arc::clone(&r1), Duration::from_secs(1), &clock);
    let l2 = listener(&processor, Arc::clone(&r2), Duration::ZERO, &clock);
    processor.add_listener(Arc::clone(&l1));
    processor.add_listener(Arc::clone(&l2));
    processor.start(tokio::runtime::Handle::current());
    // Everyone is syncing until the first should_resync.
    processor.distribute(add("x"), true);
    r1.wait_len(1).await;
    r2.wait_len(1).await;
    assert!(!processor.should_resync(), "nothing due yet");
    processor.distribute(add("y"), true);
    processor.distribute(add("z"), false);
    r1.wait_len(2).await;
    r2.wait_len(2).await;
    assert_eq!(r1.events(), ["add:x", "add:z"]);
    clock.step(Duration::from_secs(1));
    assert!(processor.should_resync());
    processor.distribute(add("w"), true);
    r1.wait_len(3).await;
    assert_eq!(r1.events()[2], "add:w");
    assert_eq!(r2.events(), ["add:x", "add:z"]);
    // Scheduled one period later.
    assert!(!processor.should_resync());
    processor.stop().await;
    assert!(l1.is_closed() && l2.is_closed());
}

#[tokio::test]
async fn listener_added_before_start_waits_and_removed_listener_stops() {
    let clock = FakeClock::new();
    let processor = Processor::<Pod>::new(clock.shared());
    let recorder = Recorder::new();
    let l = listener(&processor, Arc::clone(&recorder), Duration::ZERO, &clock);
    processor.add_listener(Arc::clone(&l));
    processor.distribute(add("early"), false);
    assert_eq!(l.stats().pending, 1);
    processor.start(tokio::runtime::Handle::current());
    recorder.wait_len(1).await;
    assert!(processor.remove_listener(l.id));
    assert!(!processor.remove_listener(l.id));
    processor.distribute(add("late"), false);
    assert_eq!(processor.listener_count(), 0);
    eventually("listener closed", || l.is_closed()).await;
    assert_eq!(recorder.events(), ["add:early"]);
    // A closed listener drops what it is given, and counts it.
    l.add(add("after-close"));
    assert_eq!(l.stats().dropped, 1);
    processor.stop().await;
}
