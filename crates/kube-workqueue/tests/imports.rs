//! Glob imports of kube-flowcontrol and kube-workqueue together: no name is exported by both, so
//! `RateLimiter` (the request throttle) and `ItemRateLimiter` (the per-item retry delay) are
//! each unambiguous.

use std::time::Duration;

use kube_flowcontrol::*;
use kube_workqueue::*;

#[test]
fn both_rate_limiter_traits_resolve_through_glob_imports() {
    let throttle = TokenBucketRateLimiter::new(1.0, 1);
    assert!(RateLimiter::try_accept(&throttle));
    assert!(!RateLimiter::try_accept(&throttle));

    let per_item = rate_limiter::ItemExponentialFailureRateLimiter::<String>::new(
        Duration::from_millis(5),
        Duration::from_secs(1),
    );
    let key = "default/web".to_string();
    assert_eq!(
        ItemRateLimiter::when(&per_item, &key),
        Duration::from_millis(5)
    );
    assert_eq!(
        ItemRateLimiter::when(&per_item, &key),
        Duration::from_millis(10)
    );
    assert_eq!(ItemRateLimiter::num_requeues(&per_item, &key), 2);
}
