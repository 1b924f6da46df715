//! Unit tests of the informer, fed by a scripted source instead of a reflector: client-go's
//! `shared_informer_test.go` and `processor_listener_test.go` cases.

mod fixtures;
mod handlers;
mod processor;
mod reflector_backed;
mod resync;
mod shared_informer;
