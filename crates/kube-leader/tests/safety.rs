//! The safety test: N candidates (3 to 7) on one fake clock share one in-memory lock, under a
//! seeded random schedule of crashes and restarts, pauses (shorter and longer than the renew
//! deadline and the lease), outages, slow requests, lost replies and releases.
//!
//! At every instant (after the instant's work has settled) at most one candidate that is not
//! paused may be inside its leading section (from `on_started_leading` to
//! `on_stopped_leading`, which the elector calls right after cancelling the leading token). A
//! paused candidate does nothing; when it resumes, its overdue timers run before the instant
//! settles.
//!
//! Liveness: when the other candidates were undisturbed, the next leader starts within
//! `lease + 2 x retry x (1 + 1.2)` of the previous leader's last applied write: one jittered
//! poll to observe that write, the lease, and one jittered poll to find it expired.
//!
//! `KUBE_LEADER_SAFETY_SEEDS=n` runs n seeds (default 12), `KUBE_LEADER_SAFETY_FAILOVERS=m`
//! aims at m failovers per seed (default 90).

mod sim;

use std::time::Duration;

use sim::Sim;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Outcome {
    candidates: usize,
    failovers: u64,
    violations: Vec<String>,
    checked: u64,
    slow: Vec<String>,
    max_calm_gap: Duration,
    fake_time: Duration,
}

fn chaos(seed: u64, target: u64) -> Outcome {
    let n = 3 + (seed % 5) as usize;
    let mut sim = Sim::new(n, seed, 0.02);
    let mut rng = fastrand::Rng::with_seed(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let start = sim.now();
    let s = Duration::from_secs;
    let ms = |rng: &mut fastrand::Rng, lo: u64, hi: u64| Duration::from_millis(rng.u64(lo..hi));
    let mut next = start + s(5);
    let limit = start + s(target * 200);
    while sim.tracker.lock().sections < target + 1 && sim.now() < limit {
        sim.run_until(next);
        let now = sim.now();
        // Disrupt the leader most of the time, else anyone.
        let i = match sim.leader() {
            Some(i) if rng.f64() < 0.75 => i,
            _ => rng.usize(0..n),
        };
        match rng.u8(0..6) {
            0 => sim.crash(i, ms(&mut rng, 1_000, 30_000)),
            1 => {
                let length = ms(&mut rng, 1_000, 45_000);
                sim.pause(i, length)
            }
            2 => {
                let until = now + ms(&mut rng, 5_000, 30_000);
                sim.window(i, |w| w.outage_until = Some(until), until)
            }
            3 => {
                let until = now + ms(&mut rng, 5_000, 30_000);
                let max = ms(&mut rng, 1_000, 9_900);
                sim.window(
                    i,
                    |w| {
                        w.slow_until = Some(until);
                        w.slow_max = max;
                    },
                    until,
                )
            }
            4 => {
                let until = now + ms(&mut rng, 5_000, 30_000);
                sim.window(i, |w| w.lossy_until = Some(until), until)
            }
            _ => sim.stop(i, ms(&mut rng, 1_000, 10_000)),
        }
        next = sim.now() + ms(&mut rng, 1_000, 25_000);
    }
    // Calm down: no more faults, and everyone gets back.
    sim.faults.lock().noise = 0.0;
    sim.faults.lock().windows.clear();
    let end = sim.now() + s(120);
    sim.run_until(end);

    let bound = sim.lease + sim.retry.mul_f64(2.0 * (1.0 + kube_leader::JITTER_FACTOR));
    let ended_with_leader = sim.leader().is_some();
    let tracker = sim.tracker.lock();
    let mut checked = 0;
    let mut slow = Vec::new();
    let mut max_calm_gap = Duration::ZERO;
    for gap in &tracker.gaps {
        if sim.others_disturbed(&gap.prev, gap.from, gap.at) {
            continue;
        }
        checked += 1;
        max_calm_gap = max_calm_gap.max(gap.gap());
        if gap.gap() > bound {
            slow.push(format!(
                "after {} at {:?}: {:?}",
                gap.prev,
                gap.from - start,
                gap.gap()
            ));
        }
    }
    let mut violations = tracker.violations.clone();
    if !ended_with_leader {
        violations.push("no leader after two calm minutes".to_string());
    }
    Outcome {
        candidates: n,
        failovers: tracker.sections.saturating_sub(1),
        violations,
        checked,
        slow,
        max_calm_gap,
        fake_time: sim.now() - start,
    }
}

#[test]
fn at_most_one_leader_under_random_faults() {
    let seeds = env("KUBE_LEADER_SAFETY_SEEDS", 12);
    let target = env("KUBE_LEADER_SAFETY_FAILOVERS", 90);
    let mut failovers = 0;
    let mut violations = 0;
    let mut checked = 0;
    let mut slow = 0;
    let mut max_gap = Duration::ZERO;
    let started = std::time::Instant::now();
    for seed in 1..=seeds {
        let o = chaos(seed, target);
        println!(
            "seed {seed:>3}: {} candidates, {} failovers in {:.1} h of fake time, {} violations, {} calm failovers checked (max {:.1} s), {} too slow",
            o.candidates,
            o.failovers,
            o.fake_time.as_secs_f64() / 3600.0,
            o.violations.len(),
            o.checked,
            o.max_calm_gap.as_secs_f64(),
            o.slow.len()
        );
        for v in o.violations.iter().take(5) {
            println!("    violation: {v}");
        }
        for v in o.slow.iter().take(5) {
            println!("    slow failover: {v}");
        }
        failovers += o.failovers;
        violations += o.violations.len();
        checked += o.checked;
        slow += o.slow.len();
        max_gap = max_gap.max(o.max_calm_gap);
    }
    println!(
        "safety: seeds 1..={seeds}, {failovers} failovers, {violations} violations, {checked} calm failovers within the bound (max {:.1} s), {slow} too slow; {:.1} s of real time",
        max_gap.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(violations, 0, "two leaders at once");
    assert_eq!(slow, 0, "a failover exceeded lease + 2 x jittered retry");
    assert!(
        failovers >= seeds * target * 9 / 10,
        "only {failovers} failovers"
    );
}
