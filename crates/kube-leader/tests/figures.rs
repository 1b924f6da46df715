//! Figures with client-go's default timings (15 s lease, 10 s renew deadline, 2 s retry
//! period), three candidates, on a fake clock: failover time after a crash and after a
//! release, and lock requests per second per candidate. `cargo test -p kube-leader --test
//! figures -- --nocapture` prints them; the assertions hold the goals.

mod sim;

use std::time::Duration;

use sim::Sim;

fn stats(name: &str, mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    let p = |q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "{name}: {} trials, mean {:.2} s, p50 {:.2} s, p95 {:.2} s, max {:.2} s",
        v.len(),
        mean.as_secs_f64(),
        p(0.5).as_secs_f64(),
        p(0.95).as_secs_f64(),
        p(1.0).as_secs_f64()
    );
    (mean, p(1.0))
}

/// Runs until a new leading section starts; returns when it started.
fn next_section(sim: &mut Sim) -> std::time::Instant {
    let before = sim.tracker.lock().sections;
    let limit = sim.now() + Duration::from_secs(120);
    loop {
        sim.settle();
        if sim.tracker.lock().sections > before {
            return sim.now();
        }
        assert!(sim.now() < limit, "no leader within two minutes");
        sim.advance(limit);
    }
}

#[test]
fn failover_after_crash_and_release() {
    let mut sim = Sim::new(3, 42, 0.0);
    let mut rng = fastrand::Rng::with_seed(42);
    next_section(&mut sim);
    let (mut crash, mut crash_from_write, mut release) = (Vec::new(), Vec::new(), Vec::new());
    for trial in 0..400 {
        // Lead for a while (the others, back at most 40 s after their last disruption,
        // have been watching for at least 20 s), then crash (a 40 s outage, so another
        // candidate takes over) or release.
        let until = sim.now() + Duration::from_millis(rng.u64(60_000..90_000));
        sim.run_until(until);
        let leader = sim.leader().expect("a leader");
        let at = sim.now();
        if trial % 2 == 0 {
            sim.crash(leader, Duration::from_secs(40));
            let started = next_section(&mut sim);
            crash.push(started - at);
            let gap = sim.tracker.lock().gaps.last().unwrap().gap();
            crash_from_write.push(gap);
        } else {
            sim.stop(leader, Duration::from_secs(5));
            next_section(&mut sim);
            // From the release (the last write of the previous leader).
            release.push(sim.tracker.lock().gaps.last().unwrap().gap());
        }
    }
    let (lease, retry) = (sim.lease, sim.retry);
    let (crash_mean, _) = stats("failover after a crash (from the crash)", crash);
    let (_, crash_max) = stats(
        "failover after a crash (from the last renewal)",
        crash_from_write,
    );
    let (release_mean, release_max) = stats("failover after a release", release);
    // Goals: a crash is covered within lease + retry on average; the bound for the worst case
    // is lease + 2 jittered polls. A release is taken over within one (jittered) retry period.
    assert!(crash_mean <= lease + retry, "{crash_mean:?}");
    assert!(
        crash_max <= lease + retry.mul_f64(2.0 * 2.2),
        "{crash_max:?}"
    );
    assert!(release_mean <= retry, "{release_mean:?}");
    assert!(release_max <= retry.mul_f64(2.2), "{release_max:?}");
    assert!(sim.tracker.lock().violations.is_empty());
}

#[test]
fn requests_per_second_per_candidate() {
    let mut sim = Sim::new(3, 7, 0.0);
    let start = sim.now();
    next_section(&mut sim);
    let leader = sim.candidates[sim.leader().unwrap()].id.clone();
    let hour = Duration::from_secs(3600);
    let before: Vec<u64> = sim.candidates.iter().map(|c| sim.requests(&c.id)).collect();
    let from = sim.now();
    sim.run_until(from + hour);
    for (c, before) in sim.candidates.iter().zip(before) {
        let rate = (sim.requests(&c.id) - before) as f64 / hour.as_secs_f64();
        let ops = sim.store.operations(&c.id);
        let role = if c.id == leader { "leader" } else { "follower" };
        println!(
            "{} ({role}): {rate:.3} requests/s ({} gets, {} updates in total)",
            c.id, ops.gets, ops.updates
        );
        if c.id == leader {
            // One update every retry period (the fast path).
            assert!((rate - 0.5).abs() < 0.01, "{rate}");
        } else {
            // One get every retry period x [1, 2.2): about 1 / 3.2 s.
            assert!(rate > 1.0 / 4.4 && rate < 0.5, "{rate}");
        }
    }
    assert!(sim.now() - start >= hour);
}
