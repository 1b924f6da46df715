//! The small vocabulary shared by both recorders: event types, references to the object an
//! event is about, event names and timestamps.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube_apimachinery::{DynamicObject, Object};

/// The type of an event: client-go accepts exactly `Normal` and `Warning`
/// (`util.ValidateEventType`).
///
/// ```
/// use kube_record::EventType;
///
/// assert_eq!("Warning".parse::<EventType>().unwrap(), EventType::Warning);
/// assert!("Error".parse::<EventType>().is_err());
/// assert_eq!(EventType::Normal.as_str(), "Normal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Information: something happened as expected.
    Normal,
    /// Something may need a human's attention.
    Warning,
}

impl EventType {
    /// `"Normal"` or `"Warning"`, as written in the event's `type`.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event type other than `Normal` or `Warning`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported event type {0:?}: expected \"Normal\" or \"Warning\"")]
pub struct InvalidEventType(pub String);

impl FromStr for EventType {
    type Err = InvalidEventType;

    fn from_str(s: &str) -> Result<EventType, InvalidEventType> {
        match s {
            "Normal" => Ok(EventType::Normal),
            "Warning" => Ok(EventType::Warning),
            other => Err(InvalidEventType(other.to_string())),
        }
    }
}

/// Something an event can be about: anything that yields an `ObjectReference`.
///
/// Implemented for every k8s-openapi resource with `ObjectMeta` (kind and apiVersion from
/// `k8s_openapi::Resource`, name, namespace, uid and resourceVersion from the metadata, as
/// client-go's `reference.GetReference`) and for [`Reference`], which wraps an explicit
/// reference or a [`DynamicObject`]'s.
pub trait Referent {
    /// The reference written into the event (`involvedObject`, `regarding`, `related`).
    fn object_reference(&self) -> ObjectReference;
}

fn non_empty(value: Option<&str>) -> Option<String> {
    value.filter(|v| !v.is_empty()).map(str::to_string)
}

fn reference_from_meta(kind: &str, api_version: &str, meta: &ObjectMeta) -> ObjectReference {
    ObjectReference {
        kind: non_empty(Some(kind)),
        api_version: non_empty(Some(api_version)),
        name: non_empty(meta.name.as_deref()),
        namespace: non_empty(meta.namespace.as_deref()),
        uid: non_empty(meta.uid.as_deref()),
        resource_version: non_empty(meta.resource_version.as_deref()),
        field_path: None,
    }
}

impl<K> Referent for K
where
    K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    fn object_reference(&self) -> ObjectReference {
        reference_from_meta(K::KIND, K::API_VERSION, self.meta())
    }
}

/// An explicit `ObjectReference` (client-go accepts a `*v1.ObjectReference` wherever it takes
/// an object), optionally pointing into the object with a field path
/// (`reference.GetPartialReference`).
///
/// ```
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_record::{Reference, Referent};
///
/// let mut pod = Pod::default();
/// pod.metadata.name = Some("web-0".into());
/// pod.metadata.namespace = Some("prod".into());
/// let reference = Reference::of(&pod).field_path("spec.containers[0]");
/// let r = reference.object_reference();
/// assert_eq!(r.kind.as_deref(), Some("Pod"));
/// assert_eq!(r.api_version.as_deref(), Some("v1"));
/// assert_eq!(r.field_path.as_deref(), Some("spec.containers[0]"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reference(pub ObjectReference);

impl Reference {
    /// The reference of a typed object.
    pub fn of<K: Referent + ?Sized>(object: &K) -> Reference {
        Reference(object.object_reference())
    }

    /// The reference of a dynamic object; its `kind` and `apiVersion` must be set.
    pub fn from_dynamic(object: &DynamicObject) -> Result<Reference, ReferenceError> {
        if object.kind.is_empty() {
            return Err(ReferenceError::MissingKind {
                name: object.name().to_string(),
            });
        }
        if object.api_version.is_empty() {
            return Err(ReferenceError::MissingApiVersion {
                name: object.name().to_string(),
            });
        }
        Ok(Reference(reference_from_meta(
            &object.kind,
            &object.api_version,
            &object.metadata,
        )))
    }

    /// Points the reference at a part of the object (`spec.containers{web}`).
    pub fn field_path(mut self, field_path: impl Into<String>) -> Reference {
        self.0.field_path = non_empty(Some(&field_path.into()));
        self
    }
}

impl From<ObjectReference> for Reference {
    fn from(reference: ObjectReference) -> Reference {
        Reference(reference)
    }
}

impl Referent for Reference {
    fn object_reference(&self) -> ObjectReference {
        self.0.clone()
    }
}

/// Why a reference could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReferenceError {
    /// A dynamic object without `kind`.
    #[error("object {name:?} has no kind: cannot build a reference to it")]
    MissingKind {
        /// The object's name.
        name: String,
    },
    /// A dynamic object without `apiVersion`.
    #[error("object {name:?} has no apiVersion: cannot build a reference to it")]
    MissingApiVersion {
        /// The object's name.
        name: String,
    },
}

/// The longest valid object name (a DNS-1123 subdomain).
const MAX_NAME_LENGTH: usize = 253;

/// Whether `name` is a DNS-1123 subdomain (apimachinery's `NameIsDNSSubdomain`): at most 253
/// characters, dot-separated labels of lowercase alphanumerics and `-`, each starting and ending
/// with an alphanumeric.
pub fn is_dns_subdomain(name: &str) -> bool {
    if name.is_empty() || name.len() > MAX_NAME_LENGTH {
        return false;
    }
    name.split('.').all(|label| {
        let bytes = label.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        match (bytes.first(), bytes.last()) {
            (Some(first), Some(last)) => {
                alnum(first) && alnum(last) && bytes.iter().all(|b| alnum(b) || *b == b'-')
            }
            _ => false,
        }
    })
}

/// An event's name, as client-go's `util.GenerateEventName`: `<object name>.<unix nanos in
/// lowercase hex>`, or a random UUID when that is not a valid object name (an object name with
/// capitals, or too long: kubernetes/kubernetes#127594).
///
/// ```
/// use kube_record::generate_event_name;
///
/// assert_eq!(generate_event_name("web-0", 0x17f0c2a4b1d3e5f7), "web-0.17f0c2a4b1d3e5f7");
/// assert_eq!(generate_event_name("Web", 1).len(), 36); // a UUID
/// ```
pub fn generate_event_name(reference_name: &str, unix_nanos: i64) -> String {
    let name = if unix_nanos < 0 {
        format!("{reference_name}.-{:x}", unix_nanos.unsigned_abs())
    } else {
        format!("{reference_name}.{unix_nanos:x}")
    };
    if is_dns_subdomain(&name) {
        name
    } else {
        uuid::Uuid::new_v4().to_string()
    }
}

/// Nanoseconds since the Unix epoch (negative before it, saturating at the bounds of `i64`).
pub(crate) fn unix_nanos(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_nanos()).unwrap_or(i64::MAX),
    }
}

/// A wall time as jiff's timestamp (nanosecond precision, within ±292 years of 1970).
pub(crate) fn date_time(time: SystemTime) -> Timestamp {
    // ok: every i64 count of nanoseconds (±292 years) lies within jiff's range (±9999 years).
    Timestamp::from_nanosecond(i128::from(unix_nanos(time))).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A `metav1.Time` (serialized with second precision).
pub(crate) fn meta_time(time: SystemTime) -> Time {
    Time(date_time(time))
}

/// A `metav1.MicroTime` (serialized with microsecond precision).
pub(crate) fn micro_time(time: SystemTime) -> MicroTime {
    MicroTime(date_time(time))
}

/// `metav1.NamespaceDefault`: where events about cluster-scoped objects go.
pub(crate) const NAMESPACE_DEFAULT: &str = "default";

/// This machine's host name: `/proc/sys/kernel/hostname`, else `/etc/hostname`, else the
/// `HOSTNAME` environment variable, else `""` (Go's `os.Hostname` without libc).
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube_apimachinery::ResourceInfo;

    #[test]
    fn event_names_follow_client_go() {
        assert_eq!(generate_event_name("foo", 255), "foo.ff");
        assert_eq!(generate_event_name("a.b-c", 16), "a.b-c.10");
        // Invalid names become UUIDs (client-go's TestGenerateEventName cases).
        for bad in ["Foo", "foo_bar", &"x".repeat(252), "-foo", "foo..bar"] {
            let name = generate_event_name(bad, 1);
            assert!(uuid::Uuid::parse_str(&name).is_ok(), "{bad} -> {name}");
        }
        // An empty reference name still gives a valid name (".<hex>" is not, so a UUID).
        assert!(is_dns_subdomain(&generate_event_name("", 1)));
    }

    #[test]
    fn dns_subdomains() {
        assert!(is_dns_subdomain("a"));
        assert!(is_dns_subdomain("a-b.c1"));
        assert!(!is_dns_subdomain(""));
        assert!(!is_dns_subdomain("a."));
        assert!(!is_dns_subdomain("a-"));
        assert!(!is_dns_subdomain("A"));
        assert!(is_dns_subdomain(&"a".repeat(253)));
        assert!(!is_dns_subdomain(&"a".repeat(254)));
    }

    #[test]
    fn references_of_typed_and_dynamic_objects() {
        let mut pod = Pod::default();
        pod.metadata.name = Some("foo".into());
        pod.metadata.namespace = Some("baz".into());
        pod.metadata.uid = Some("bar".into());
        pod.metadata.resource_version = Some("7".into());
        let r = pod.object_reference();
        assert_eq!(r.kind.as_deref(), Some("Pod"));
        assert_eq!(r.api_version.as_deref(), Some("v1"));
        assert_eq!(r.uid.as_deref(), Some("bar"));
        assert_eq!(r.resource_version.as_deref(), Some("7"));
        assert_eq!(r.field_path, None);

        let info = ResourceInfo::of::<k8s_openapi::api::apps::v1::Deployment>();
        let dynamic = DynamicObject::new("web", &info).within("prod");
        let r = Reference::from_dynamic(&dynamic).unwrap().0;
        assert_eq!(r.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(r.kind.as_deref(), Some("Deployment"));
        let mut no_kind = dynamic.clone();
        no_kind.kind.clear();
        assert!(matches!(
            Reference::from_dynamic(&no_kind),
            Err(ReferenceError::MissingKind { .. })
        ));
    }

    #[test]
    fn event_types_parse() {
        assert_eq!("Normal".parse::<EventType>(), Ok(EventType::Normal));
        assert_eq!(
            "normal".parse::<EventType>(),
            Err(InvalidEventType("normal".into()))
        );
    }

    #[test]
    fn unix_nanos_before_and_after_the_epoch() {
        use std::time::Duration;
        assert_eq!(unix_nanos(UNIX_EPOCH + Duration::from_nanos(5)), 5);
        assert_eq!(unix_nanos(UNIX_EPOCH - Duration::from_nanos(5)), -5);
    }
}
