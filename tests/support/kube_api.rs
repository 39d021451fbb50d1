//! A Kubernetes API server for tests, with a kubelet that runs Pods as local processes.
//!
//! [`KubeApi::start`] serves, on `http://127.0.0.1:<port>`, the REST paths and JSON that kube-rs
//! uses for `core/v1` Pods, Secrets and ConfigMaps and `networking.k8s.io/v1` NetworkPolicies in
//! one namespace:
//!
//! - create (`POST`), get, list (`labelSelector` with `k=v`, `k==v`, `k!=v`, `k`, `!k` terms;
//!   `fieldSelector` on `metadata.name` / `metadata.namespace`), watch (`?watch=true`:
//!   newline-delimited `{"type":"ADDED|MODIFIED|DELETED|BOOKMARK","object":…}` from the given
//!   `resourceVersion`, with bookmarks when `allowWatchBookmarks`, ending after
//!   `timeoutSeconds`), and delete (`propagationPolicy` `Background`/`Foreground` cascade to
//!   dependents by `ownerReferences` uid through a garbage collector, `Orphan` strips the
//!   references);
//! - errors as `kind: Status` objects with the API's `reason`s: `AlreadyExists` (409),
//!   `NotFound` (404), `Invalid` (422), `Forbidden` (403), `BadRequest` (400);
//! - it assigns `uid`, `resourceVersion` (one counter) and `creationTimestamp`;
//! - every created object is validated against the official schemas with
//!   [`crate::k8s::validate`] (pinned `kubernetes-validate --strict`) and refused with `422
//!   Invalid` when it does not pass; Pods are also checked against the `restricted` Pod Security
//!   Standard (the subset of checks Picket's Pods meet by construction), as a namespace labelled
//!   `pod-security.kubernetes.io/enforce=restricted` would (`403 Forbidden`);
//! - every request is recorded ([`KubeApi::requests`], [`KubeApi::writes`]).
//!
//! # The kubelet
//!
//! A created Pod runs: its container's `command[0]` is replaced by the local binary mapped to its
//! `image` ([`KubeApiOptions::image`]), and the rest of the command and `args` are kept. Its
//! environment is exactly the Pod's: `env` (values and `secretKeyRef`s) and `envFrom`
//! (`secretRef`), read from the stored Secrets, plus `PATH` (the image's) and `HOSTNAME`. Each
//! `emptyDir` is a fresh temporary directory; an env value or `workingDir` equal to its mount
//! path is mapped to it (only equal: host paths the tests pass may share a prefix with it). Each
//! `configMap` volume is a fresh directory holding the stored ConfigMap's keys as files (a
//! missing ConfigMap is `CreateContainerConfigError`); an env value naming one of those files
//! (`<mountPath>/<key>`) is mapped to it. A `secret` volume is a fresh directory with one file
//! per key of the stored Secret (mode `defaultMode`); an env value naming a file under its mount
//! path is mapped into it. The Pod's status moves `Pending` → `Running` →
//! `Succeeded`/`Failed` with the container's exit code (a signal is 128 + its number), each move
//! a watch event. `activeDeadlineSeconds` is enforced (the process group gets SIGTERM, then
//! SIGKILL after the grace period; phase `Failed`, reason `DeadlineExceeded`). Deleting a running
//! Pod marks it (`deletionTimestamp`), stops its process group the same way, and removes it
//! when the process is gone. An image without a mapping leaves the Pod `Pending` with
//! `ErrImagePull`; a missing Secret with `CreateContainerConfigError`.
//!
//! Not emulated: scheduling, networking (NetworkPolicies are stored and validated, not
//! enforced: the opt-in real-cluster suite checks them), resource limits, `PATCH`/`PUT`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};

/// The object kinds served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Secret,
    NetworkPolicy,
    Pod,
    ConfigMap,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Secret,
        Kind::NetworkPolicy,
        Kind::Pod,
        Kind::ConfigMap,
    ];

    /// The resource name in paths (`secrets`, `networkpolicies`, `pods`).
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Secret => "secrets",
            Kind::NetworkPolicy => "networkpolicies",
            Kind::Pod => "pods",
            Kind::ConfigMap => "configmaps",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Kind::NetworkPolicy => "networking.k8s.io/v1",
            Kind::Secret | Kind::Pod | Kind::ConfigMap => "v1",
        }
    }

    pub fn kind(self) -> &'static str {
        match self {
            Kind::Secret => "Secret",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::Pod => "Pod",
            Kind::ConfigMap => "ConfigMap",
        }
    }

    fn from_plural(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.plural() == s)
    }
}

/// One request as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string (empty when none).
    pub query: String,
}

impl Recorded {
    /// `METHOD resource` or `METHOD resource/name`, e.g. `POST secrets`, `DELETE secrets/x`.
    pub fn short(&self) -> String {
        let rest = self
            .path
            .split_once("/namespaces/")
            .and_then(|(_, r)| r.split_once('/'))
            .map_or(self.path.as_str(), |(_, r)| r);
        format!("{} {rest}", self.method)
    }
}

/// How the server is set up.
#[derive(Debug, Clone)]
pub struct KubeApiOptions {
    pub namespace: String,
    images: HashMap<String, PathBuf>,
    /// Validate created objects against the schemas (default true).
    pub validate: bool,
    /// Enforce the `restricted` Pod Security Standard on Pods (default true).
    pub restricted: bool,
    /// Idle time between two BOOKMARK events of a watch that asked for them.
    pub bookmark_every: Duration,
}

impl KubeApiOptions {
    pub fn new(namespace: &str) -> KubeApiOptions {
        KubeApiOptions {
            namespace: namespace.to_owned(),
            images: HashMap::new(),
            validate: true,
            restricted: true,
            bookmark_every: Duration::from_secs(2),
        }
    }

    /// Containers from `image` run `binary` in place of their `command[0]`.
    pub fn image(mut self, image: &str, binary: impl Into<PathBuf>) -> KubeApiOptions {
        self.images.insert(image.to_owned(), binary.into());
        self
    }
}

/// The running server; stops (and kills its Pods' processes) when dropped.
pub struct KubeApi {
    url: String,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for KubeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeApi").field("url", &self.url).finish()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let store = self.shared.lock();
        for ctl in store.kubelets.values() {
            if let Some(pgid) = ctl.pgid {
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

struct Shared {
    opts: KubeApiOptions,
    store: Mutex<Store>,
    changed: watch::Sender<u64>,
    requests: Mutex<Vec<Recorded>>,
    logs: Mutex<HashMap<String, Arc<Mutex<Vec<u8>>>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct Store {
    rv: u64,
    objects: BTreeMap<(Kind, String), Value>,
    log: Vec<Change>,
    /// Pods whose process the kubelet still runs, by uid.
    kubelets: HashMap<String, KubeletCtl>,
}

struct Change {
    rv: u64,
    kind: Kind,
    event: &'static str,
    object: Value,
}

struct KubeletCtl {
    pgid: Option<i32>,
    stop: Option<oneshot::Sender<Duration>>,
}

impl Store {
    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `object` under a new resourceVersion and logs the event.
    fn put(&mut self, kind: Kind, mut object: Value, event: &'static str) -> Value {
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        let name = name_of(&object).to_owned();
        self.objects.insert((kind, name), object.clone());
        self.log.push(Change {
            rv,
            kind,
            event,
            object: object.clone(),
        });
        object
    }

    fn remove(&mut self, kind: Kind, name: &str) -> Option<Value> {
        let mut object = self.objects.remove(&(kind, name.to_owned()))?;
        let rv = self.bump();
        object["metadata"]["resourceVersion"] = json!(rv.to_string());
        self.log.push(Change {
            rv,
            kind,
            event: "DELETED",
            object: object.clone(),
        });
        Some(object)
    }

    fn uids(&self) -> std::collections::HashSet<String> {
        self.objects
            .values()
            .filter_map(|o| o["metadata"]["uid"].as_str().map(str::to_owned))
            .collect()
    }
}

fn name_of(object: &Value) -> &str {
    object["metadata"]["name"].as_str().unwrap_or_default()
}

impl KubeApi {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start(opts: KubeApiOptions) -> KubeApi {
        let (changed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            opts,
            store: Mutex::new(Store::default()),
            changed,
            requests: Mutex::default(),
            logs: Mutex::default(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Kubernetes API");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        KubeApi {
            url,
            shared,
            shutdown: Some(tx),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn namespace(&self) -> &str {
        &self.shared.opts.namespace
    }

    /// A kube-rs client of this server, defaulting to its namespace.
    pub fn client(&self) -> kube::Client {
        let mut cfg = kube::Config::new(self.url.parse().expect("a valid URL"));
        cfg.default_namespace = self.shared.opts.namespace.clone();
        kube::Client::try_from(cfg).expect("a kube client")
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Every write (any method but GET) so far, in order.
    pub fn writes(&self) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method != "GET")
            .collect()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The stored objects of `kind`, by name.
    pub fn objects(&self, kind: Kind) -> BTreeMap<String, Value> {
        self.shared
            .lock()
            .objects
            .iter()
            .filter(|((k, _), _)| *k == kind)
            .map(|((_, n), o)| (n.clone(), o.clone()))
            .collect()
    }

    /// `kind/name` of every stored object.
    pub fn names(&self) -> Vec<String> {
        self.shared
            .lock()
            .objects
            .keys()
            .map(|(k, n)| format!("{}/{n}", k.plural()))
            .collect()
    }

    /// Waits until no object is stored (the garbage collector and the kubelet work
    /// asynchronously); panics with what is left after `within`.
    pub async fn wait_empty(&self, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = self.names();
            if left.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "objects left after {within:?}: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the Pod's process wrote to stdout and stderr.
    pub fn pod_logs(&self, name: &str) -> String {
        let logs = self.shared.logs.lock().unwrap_or_else(|p| p.into_inner());
        logs.get(name)
            .map(|l| {
                String::from_utf8_lossy(&l.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
            })
            .unwrap_or_default()
    }
}

/// Answers a `kind: Status` failure, as the API does.
fn status(code: StatusCode, reason: &str, message: String, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    if let Some(d) = details {
        body["details"] = d;
    }
    (code, axum::Json(body)).into_response()
}

fn not_found(kind: Kind, name: &str) -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("{} \"{name}\" not found", kind.plural()),
        Some(json!({"name": name, "kind": kind.plural()})),
    )
}

fn bad_request(message: String) -> Response {
    status(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or_default().to_owned();
    shared
        .requests
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Recorded {
            method: method.to_string(),
            path: path.clone(),
            query: query.clone(),
        });
    let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest = match segments.as_slice() {
        ["api", "v1", "namespaces", rest @ ..] => rest,
        ["apis", "networking.k8s.io", "v1", "namespaces", rest @ ..] => rest,
        _ => {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("the server could not find the requested resource ({path})"),
                None,
            )
        }
    };
    let (ns, plural, name) = match rest {
        [ns, plural] => (*ns, *plural, None),
        [ns, plural, name] => (*ns, *plural, Some(*name)),
        _ => {
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("the server could not find the requested resource ({path})"),
                None,
            )
        }
    };
    let Some(kind) = Kind::from_plural(plural) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
            None,
        );
    };
    let group_ok = (kind.api_version() == "v1") == path.starts_with("/api/v1/");
    if !group_ok {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
            None,
        );
    }
    if ns != shared.opts.namespace {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
            Some(json!({"name": ns, "kind": "namespaces"})),
        );
    }
    match (method, name) {
        (Method::POST, None) => create(&shared, kind, &body).await,
        (Method::GET, None)
            if matches!(params.get("watch").map(String::as_str), Some("true" | "1")) =>
        {
            watch_objects(&shared, kind, &params)
        }
        (Method::GET, None) => list(&shared, kind, &params),
        (Method::GET, Some(name)) => match shared.lock().objects.get(&(kind, name.to_owned())) {
            Some(o) => (StatusCode::OK, axum::Json(o.clone())).into_response(),
            None => not_found(kind, name),
        },
        (Method::DELETE, Some(name)) => {
            let opts: Value = if body.is_empty() {
                json!({})
            } else {
                match serde_json::from_slice(&body) {
                    Ok(v) => v,
                    Err(e) => return bad_request(format!("invalid DeleteOptions: {e}")),
                }
            };
            let propagation = opts["propagationPolicy"].as_str().unwrap_or("Background");
            if !["Background", "Foreground", "Orphan"].contains(&propagation) {
                return bad_request(format!("invalid propagationPolicy {propagation}"));
            }
            let grace = opts["gracePeriodSeconds"].as_i64();
            match delete(&shared, kind, name, grace, propagation == "Orphan") {
                Some(resp) => resp,
                None => not_found(kind, name),
            }
        }
        (m, _) => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("the test server does not serve {m} {path}"),
            None,
        ),
    }
}

async fn create(shared: &Arc<Shared>, kind: Kind, body: &[u8]) -> Response {
    let mut object: Value = match serde_json::from_slice(body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_request("the body is not an object".into()),
        Err(e) => return bad_request(format!("the body is not JSON: {e}")),
    };
    if object["apiVersion"] != kind.api_version() || object["kind"] != kind.kind() {
        return bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            object["apiVersion"],
            kind.api_version()
        ));
    }
    let name = name_of(&object).to_owned();
    let ns = &shared.opts.namespace;
    match object["metadata"]["namespace"].as_str() {
        None => object["metadata"]["namespace"] = json!(ns),
        Some(n) if n == ns => {}
        Some(_) => return bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        ),
    }
    let invalid = |message: String| {
        status(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid",
            format!("{} \"{name}\" is invalid: {message}", kind.kind()),
            Some(json!({"name": name, "kind": kind.kind()})),
        )
    };
    if !is_dns_subdomain(&name) {
        return invalid(format!("metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'"));
    }
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
    ] {
        if !object["metadata"][field].is_null() && field != "creationTimestamp" {
            return invalid(format!(
                "metadata.{field}: Forbidden: may not be set on create"
            ));
        }
    }
    if shared.opts.validate {
        let submitted = object.clone();
        let checked = tokio::task::spawn_blocking(move || crate::k8s::validate(&[submitted]))
            .await
            .expect("the validator ran");
        if let Err(report) = checked {
            return invalid(report);
        }
    }
    if kind == Kind::Pod && shared.opts.restricted {
        let violations = pod_security_restricted(&object);
        if !violations.is_empty() {
            return status(
                StatusCode::FORBIDDEN,
                "Forbidden",
                format!(
                    "pods \"{name}\" is forbidden: violates PodSecurity \"restricted:latest\": {}",
                    violations.join(", ")
                ),
                Some(json!({"name": name, "kind": "pods"})),
            );
        }
    }
    if kind == Kind::Secret {
        // stringData is write-only: merged into data.
        if let Some(Value::Object(plain)) =
            object.as_object_mut().and_then(|o| o.remove("stringData"))
        {
            let data = object["data"].as_object().cloned().unwrap_or_default();
            let mut data: Map<String, Value> = data;
            for (k, v) in plain {
                let v = v.as_str().unwrap_or_default().to_owned();
                data.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(v)),
                );
            }
            object["data"] = Value::Object(data);
        }
    }
    let stored = {
        let mut store = shared.lock();
        if store.objects.contains_key(&(kind, name.clone())) {
            return status(
                StatusCode::CONFLICT,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.plural()),
                Some(json!({"name": name, "kind": kind.plural()})),
            );
        }
        let meta = &mut object["metadata"];
        meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
        meta["creationTimestamp"] = json!(now());
        if kind == Kind::NetworkPolicy {
            meta["generation"] = json!(1);
        }
        if kind == Kind::Pod {
            object["status"] = json!({"phase": "Pending", "qosClass": "Burstable"});
            object["spec"]["nodeName"] = json!("test-node");
        }
        let stored = store.put(kind, object, "ADDED");
        if kind == Kind::Pod {
            let uid = stored["metadata"]["uid"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let (stop_tx, stop_rx) = oneshot::channel();
            store.kubelets.insert(
                uid.clone(),
                KubeletCtl {
                    pgid: None,
                    stop: Some(stop_tx),
                },
            );
            tokio::spawn(kubelet(Arc::clone(shared), name.clone(), uid, stop_rx));
        }
        stored
    };
    shared.changed.send_replace(stored_rv(&stored));
    collect_garbage(shared);
    (StatusCode::CREATED, axum::Json(stored)).into_response()
}

fn stored_rv(object: &Value) -> u64 {
    object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// Deletes `name`: a running Pod is marked and stopped (the kubelet removes it when its process
/// is gone); anything else is removed now. Dependents go through the garbage collector unless
/// `orphan`, which strips their references instead.
fn delete(
    shared: &Arc<Shared>,
    kind: Kind,
    name: &str,
    grace: Option<i64>,
    orphan: bool,
) -> Option<Response> {
    let response = {
        let mut store = shared.lock();
        let object = store.objects.get(&(kind, name.to_owned()))?.clone();
        let uid = object["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if orphan {
            let dependents: Vec<(Kind, String)> = store
                .objects
                .iter()
                .filter(|(_, o)| owner_uids(o).contains(&uid))
                .map(|(k, _)| k.clone())
                .collect();
            for (k, n) in dependents {
                let mut o = store.objects[&(k, n.clone())].clone();
                let refs: Vec<Value> = o["metadata"]["ownerReferences"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|r| r["uid"] != uid.as_str())
                    .cloned()
                    .collect();
                let meta = o["metadata"].as_object_mut().expect("metadata");
                if refs.is_empty() {
                    meta.remove("ownerReferences");
                } else {
                    meta.insert("ownerReferences".into(), Value::Array(refs));
                }
                store.put(k, o, "MODIFIED");
            }
        }
        let running = kind == Kind::Pod && store.kubelets.contains_key(&uid);
        if running {
            let grace = grace
                .or_else(|| object["spec"]["terminationGracePeriodSeconds"].as_i64())
                .unwrap_or(30)
                .max(0);
            let ctl = store.kubelets.get_mut(&uid).expect("checked");
            let first = ctl.stop.is_some();
            if let Some(stop) = ctl.stop.take() {
                let _ = stop.send(Duration::from_secs(grace as u64));
            }
            if first {
                let mut marked = object.clone();
                marked["metadata"]["deletionTimestamp"] = json!(now());
                marked["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
                let marked = store.put(kind, marked, "MODIFIED");
                (StatusCode::OK, axum::Json(marked)).into_response()
            } else {
                (StatusCode::OK, axum::Json(object)).into_response()
            }
        } else {
            let removed = store.remove(kind, name).expect("present");
            if kind == Kind::Pod {
                (StatusCode::OK, axum::Json(removed)).into_response()
            } else {
                (
                    StatusCode::OK,
                    axum::Json(json!({
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                        "details": {"name": name, "kind": kind.plural(), "uid": uid},
                    })),
                )
                    .into_response()
            }
        }
    };
    let rv = shared.lock().rv;
    shared.changed.send_replace(rv);
    collect_garbage(shared);
    Some(response)
}

fn owner_uids(object: &Value) -> Vec<String> {
    object["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(str::to_owned))
        .collect()
}

/// The garbage collector: soon after every write, deletes each object all of whose owners are
/// gone (background propagation: the owner goes first, its dependents after).
fn collect_garbage(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let doomed: Vec<(Kind, String)> = {
            let store = shared.lock();
            let uids = store.uids();
            store
                .objects
                .iter()
                .filter(|(_, o)| {
                    let owners = owner_uids(o);
                    !owners.is_empty() && owners.iter().all(|u| !uids.contains(u))
                })
                .filter(|(_, o)| o["metadata"]["deletionTimestamp"].is_null())
                .map(|(k, _)| k.clone())
                .collect()
        };
        for (kind, name) in doomed {
            delete(&shared, kind, &name, None, false);
        }
    });
}

fn list(shared: &Arc<Shared>, kind: Kind, params: &HashMap<String, String>) -> Response {
    let filter = match Filter::new(params) {
        Ok(f) => f,
        Err(message) => return bad_request(message),
    };
    let store = shared.lock();
    let items: Vec<Value> = store
        .objects
        .iter()
        .filter(|((k, _), o)| *k == kind && filter.matches(o))
        .map(|(_, o)| o.clone())
        .collect();
    let body = json!({
        "kind": format!("{}List", kind.kind()), "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": store.rv.to_string()}, "items": items,
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

/// Label and field selectors of a list or watch.
struct Filter {
    labels: Vec<(String, LabelOp)>,
    fields: Vec<(String, String, bool)>,
}

enum LabelOp {
    Eq(String),
    Ne(String),
    Exists,
    Absent,
}

impl Filter {
    fn new(params: &HashMap<String, String>) -> Result<Filter, String> {
        let mut labels = Vec::new();
        for term in params
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
        {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            if term.contains(" in ") || term.contains(" notin ") || term.contains('(') {
                return Err(format!("set-based label selectors are not served: {term}"));
            }
            let parsed = if let Some((k, v)) = term.split_once("!=") {
                (k, LabelOp::Ne(v.trim().to_owned()))
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, LabelOp::Eq(v.trim().to_owned()))
            } else if let Some(k) = term.strip_prefix('!') {
                (k, LabelOp::Absent)
            } else {
                (term, LabelOp::Exists)
            };
            labels.push((parsed.0.trim().to_owned(), parsed.1));
        }
        let mut fields = Vec::new();
        for term in params
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or("")
            .split(',')
        {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let (key, value, eq) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, v, true)
            } else {
                return Err(format!("invalid field selector: {term}"));
            };
            if !["metadata.name", "metadata.namespace"].contains(&key) {
                return Err(format!("field label not supported: {key}"));
            }
            fields.push((key.to_owned(), value.to_owned(), eq));
        }
        Ok(Filter { labels, fields })
    }

    fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label_ok = self.labels.iter().all(|(k, op)| {
            let v = labels[k].as_str();
            match op {
                LabelOp::Eq(want) => v == Some(want.as_str()),
                LabelOp::Ne(want) => v != Some(want.as_str()),
                LabelOp::Exists => v.is_some(),
                LabelOp::Absent => v.is_none(),
            }
        });
        let field_ok = self.fields.iter().all(|(key, want, eq)| {
            let field = key.strip_prefix("metadata.").unwrap_or(key);
            (object["metadata"][field].as_str() == Some(want.as_str())) == *eq
        });
        label_ok && field_ok
    }
}

fn watch_objects(shared: &Arc<Shared>, kind: Kind, params: &HashMap<String, String>) -> Response {
    let filter = match Filter::new(params) {
        Ok(f) => f,
        Err(message) => return bad_request(message),
    };
    let from: Option<u64> = match params.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(rv) => match rv.parse() {
            Ok(rv) => Some(rv),
            Err(_) => return bad_request(format!("invalid resourceVersion {rv}")),
        },
    };
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(Duration::from_secs(1800), Duration::from_secs);
    let bookmarks = params.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let bookmark_every = shared.opts.bookmark_every;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let shared = Arc::clone(shared);
    tokio::spawn(async move {
        let line = |event: &str, object: &Value| {
            let mut l =
                serde_json::to_vec(&json!({"type": event, "object": object})).expect("JSON");
            l.push(b'\n');
            Bytes::from(l)
        };
        let mut changed = shared.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        // Without a version: the current objects as ADDED, then what follows.
        let mut last = match from {
            Some(rv) => rv,
            None => {
                changed.borrow_and_update();
                let (initial, rv) = {
                    let store = shared.lock();
                    let initial: Vec<Value> = store
                        .objects
                        .iter()
                        .filter(|((k, _), o)| *k == kind && filter.matches(o))
                        .map(|(_, o)| o.clone())
                        .collect();
                    (initial, store.rv)
                };
                for o in &initial {
                    if tx.send(line("ADDED", o)).await.is_err() {
                        return;
                    }
                }
                rv
            }
        };
        loop {
            changed.borrow_and_update();
            let (events, rv) = {
                let store = shared.lock();
                let events: Vec<Bytes> = store
                    .log
                    .iter()
                    .filter(|c| c.rv > last && c.kind == kind && filter.matches(&c.object))
                    .map(|c| line(c.event, &c.object))
                    .collect();
                (events, store.rv)
            };
            for e in events {
                if tx.send(e).await.is_err() {
                    return;
                }
            }
            last = last.max(rv);
            tokio::select! {
                r = changed.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(bookmark_every), if bookmarks => {
                    let bookmark = json!({
                        "kind": kind.kind(), "apiVersion": kind.api_version(),
                        "metadata": {"resourceVersion": last.to_string()},
                    });
                    if tx.send(line("BOOKMARK", &bookmark)).await.is_err() {
                        return;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("a response")
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 ns is valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339")
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// The checks of the `restricted` Pod Security Standard (Kubernetes 1.35) that apply to Pods
/// without Windows, AppArmor or SELinux settings; each violation as the admission plugin words
/// it, roughly.
pub fn pod_security_restricted(pod: &Value) -> Vec<String> {
    let spec = &pod["spec"];
    let psc = &spec["securityContext"];
    let mut out = Vec::new();
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if spec[host] == true {
            out.push(format!("host namespaces ({host}=true)"));
        }
    }
    let containers: Vec<&Value> = ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().into_iter().flatten())
        .collect();
    for c in &containers {
        let name = c["name"].as_str().unwrap_or_default();
        let sc = &c["securityContext"];
        if sc["privileged"] == true {
            out.push(format!(
                "privileged (container \"{name}\" must not set securityContext.privileged=true)"
            ));
        }
        if sc["allowPrivilegeEscalation"] != false {
            out.push(format!("allowPrivilegeEscalation != false (container \"{name}\" must set securityContext.allowPrivilegeEscalation=false)"));
        }
        let drops_all = sc["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|x| x == "ALL"));
        if !drops_all {
            out.push(format!("unrestricted capabilities (container \"{name}\" must set securityContext.capabilities.drop=[\"ALL\"])"));
        }
        let adds_other = sc["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x != "NET_BIND_SERVICE"));
        if adds_other {
            out.push(format!("unrestricted capabilities (container \"{name}\" must not add capabilities beyond NET_BIND_SERVICE)"));
        }
        let non_root = sc["runAsNonRoot"] == true
            || (sc["runAsNonRoot"].is_null() && psc["runAsNonRoot"] == true);
        if !non_root {
            out.push(format!("runAsNonRoot != true (container \"{name}\" must set securityContext.runAsNonRoot=true)"));
        }
        if sc["runAsUser"] == 0 {
            out.push(format!(
                "runAsUser=0 (container \"{name}\" must not set runAsUser=0)"
            ));
        }
        let seccomp = if sc["seccompProfile"]["type"].is_null() {
            &psc["seccompProfile"]["type"]
        } else {
            &sc["seccompProfile"]["type"]
        };
        if seccomp != "RuntimeDefault" && seccomp != "Localhost" {
            out.push(format!("seccompProfile (container \"{name}\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"));
        }
        let host_port = c["ports"]
            .as_array()
            .is_some_and(|ps| ps.iter().any(|p| p["hostPort"].as_i64().unwrap_or(0) != 0));
        if host_port {
            out.push(format!("hostPort (container \"{name}\" uses hostPort)"));
        }
    }
    if psc["runAsUser"] == 0 {
        out.push("runAsUser=0 (pod must not set runAsUser=0)".into());
    }
    const ALLOWED_VOLUMES: [&str; 8] = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for v in spec["volumes"].as_array().into_iter().flatten() {
        let types: Vec<&String> = v
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .filter(|k| *k != "name")
            .collect();
        if types.iter().any(|t| !ALLOWED_VOLUMES.contains(&t.as_str())) {
            out.push(format!(
                "restricted volume types (volume \"{}\" uses {:?})",
                v["name"].as_str().unwrap_or_default(),
                types
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The kubelet.

/// Runs one Pod's container as a local process group and reports its status.
async fn kubelet(
    shared: Arc<Shared>,
    name: String,
    uid: String,
    mut stop: oneshot::Receiver<Duration>,
) {
    let Some(pod) = shared
        .lock()
        .objects
        .get(&(Kind::Pod, name.clone()))
        .cloned()
    else {
        return;
    };
    let container = pod["spec"]["containers"][0].clone();
    let container_name = container["name"].as_str().unwrap_or_default().to_owned();
    let image = container["image"].as_str().unwrap_or_default().to_owned();
    let grace_default = pod["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(30)
        .max(0) as u64;
    let log = Arc::new(Mutex::new(Vec::new()));
    shared
        .logs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone(), Arc::clone(&log));

    let prepared = prepare(&shared, &pod, &container, &image);
    let (mut cmd, _dirs) = match prepared {
        Ok(p) => p,
        Err(reason) => {
            // The container cannot start: it waits, until the Pod is deleted.
            update_pod(&shared, &name, &uid, |p| {
                p["status"]["containerStatuses"] = json!([{
                    "name": container_name, "image": image, "imageID": "", "ready": false,
                    "restartCount": 0, "started": false,
                    "state": {"waiting": {"reason": reason, "message": format!("{reason} (test kubelet)")}},
                }]);
            });
            let _ = (&mut stop).await;
            finish(&shared, &name, &uid);
            return;
        }
    };
    let started_at = now();
    let child = cmd.spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            update_pod(&shared, &name, &uid, |p| {
                p["status"]["phase"] = json!("Failed");
                p["status"]["containerStatuses"] = json!([{
                    "name": container_name, "image": image, "imageID": "", "ready": false,
                    "restartCount": 0, "started": false,
                    "state": {"terminated": {"exitCode": 128, "reason": "StartError", "message": e.to_string(), "startedAt": started_at, "finishedAt": now()}},
                }]);
            });
            finish(&shared, &name, &uid);
            return;
        }
    };
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    if let Some(ctl) = shared.lock().kubelets.get_mut(&uid) {
        ctl.pgid = pgid;
    }
    for (pipe, target) in [
        (
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            Arc::clone(&log),
        ),
        (
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            Arc::clone(&log),
        ),
    ] {
        if let Some(mut pipe) = pipe {
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    target
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            });
        }
    }
    update_pod(&shared, &name, &uid, |p| {
        p["status"]["phase"] = json!("Running");
        p["status"]["startTime"] = json!(started_at);
        p["status"]["podIP"] = json!("127.0.0.1");
        p["status"]["containerStatuses"] = json!([{
            "name": container_name, "image": image, "imageID": image, "ready": true,
            "restartCount": 0, "started": true, "state": {"running": {"startedAt": started_at}},
        }]);
    });
    let deadline = pod["spec"]["activeDeadlineSeconds"]
        .as_u64()
        .map(Duration::from_secs);
    let deadline_sleep = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(86_400 * 365)));
    tokio::pin!(deadline_sleep);
    let mut deadline_hit = false;
    let status = tokio::select! {
        s = child.wait() => s,
        grace = &mut stop => {
            let grace = grace.unwrap_or(Duration::from_secs(grace_default));
            terminate(&mut child, pgid, grace).await
        }
        _ = &mut deadline_sleep, if deadline.is_some() => {
            deadline_hit = true;
            terminate(&mut child, pgid, Duration::from_secs(grace_default)).await
        }
    };
    let (code, reason) = match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.code(), s.signal()) {
                (Some(0), _) => (0, "Completed"),
                (Some(c), _) => (c, "Error"),
                (None, Some(sig)) => (128 + sig, "Error"),
                (None, None) => (255, "Error"),
            }
        }
        Err(_) => (255, "Error"),
    };
    let finished_at = now();
    update_pod(&shared, &name, &uid, |p| {
        let success = code == 0 && !deadline_hit;
        p["status"]["phase"] = json!(if success { "Succeeded" } else { "Failed" });
        if deadline_hit {
            p["status"]["reason"] = json!("DeadlineExceeded");
            p["status"]["message"] =
                json!("Pod was active on the node longer than the specified deadline");
        }
        p["status"]["containerStatuses"] = json!([{
            "name": container_name, "image": image, "imageID": image, "ready": false,
            "restartCount": 0, "started": false,
            "state": {"terminated": {"exitCode": code, "reason": reason, "startedAt": started_at, "finishedAt": finished_at}},
        }]);
    });
    finish(&shared, &name, &uid);
}

/// A configMap volume: the stored ConfigMap's `data` and `binaryData` keys written as files in a
/// fresh directory. Returns the directory and the keys.
fn config_map_dir(
    shared: &Shared,
    name: &str,
) -> Result<(tempfile::TempDir, Vec<String>), &'static str> {
    let object = shared
        .lock()
        .objects
        .get(&(Kind::ConfigMap, name.to_owned()))
        .cloned()
        .ok_or("CreateContainerConfigError")?;
    let dir = tempfile::Builder::new()
        .prefix("kubelet-configmap-")
        .tempdir()
        .map_err(|_| "CreateContainerError")?;
    let mut keys = Vec::new();
    let text = object["data"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                v.as_str().unwrap_or_default().as_bytes().to_vec(),
            )
        });
    let binary = object["binaryData"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .unwrap_or_default();
            (k.clone(), bytes)
        });
    for (key, bytes) in text.chain(binary) {
        std::fs::write(dir.path().join(&key), bytes).map_err(|_| "CreateContainerError")?;
        keys.push(key);
    }
    Ok((dir, keys))
}

/// The process as the container would run: the image's binary, the Pod's environment, its
/// emptyDirs as temporary directories. `Err` is the container's waiting reason.
fn prepare(
    shared: &Shared,
    pod: &Value,
    container: &Value,
    image: &str,
) -> Result<(tokio::process::Command, Vec<tempfile::TempDir>), &'static str> {
    let binary = shared.opts.images.get(image).ok_or("ErrImagePull")?.clone();
    let secret_data = |secret: &str| -> Option<BTreeMap<String, String>> {
        let store = shared.lock();
        let s = store.objects.get(&(Kind::Secret, secret.to_owned()))?;
        Some(
            s["data"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(v.as_str().unwrap_or_default())
                        .unwrap_or_default();
                    (k.clone(), String::from_utf8_lossy(&bytes).into_owned())
                })
                .collect(),
        )
    };
    // Volumes: each emptyDir a fresh directory, each secret a fresh directory holding one file
    // per key (mode `defaultMode`), mapped at its mount path.
    let mut dirs = Vec::new();
    let mut mounts: Vec<(String, PathBuf)> = Vec::new();
    let mut secret_mounts: Vec<(String, PathBuf)> = Vec::new();
    // Files of configMap volumes: (path in the container, path here).
    let mut files: Vec<(String, String)> = Vec::new();
    for m in container["volumeMounts"].as_array().into_iter().flatten() {
        let vname = &m["name"];
        let volume = pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|v| &v["name"] == vname)
            .ok_or("CreateContainerConfigError")?;
        let mount_path = m["mountPath"].as_str().unwrap_or("/").to_owned();
        if let Some(config_map) = volume["configMap"]["name"].as_str() {
            let dir = config_map_dir(shared, config_map)?;
            files.extend(dir.1.into_iter().map(|key| {
                (
                    format!("{mount_path}/{key}"),
                    dir.0.path().join(&key).display().to_string(),
                )
            }));
            dirs.push(dir.0);
            continue;
        }
        if let Some(secret) = volume["secret"]["secretName"].as_str() {
            let data = secret_data(secret).ok_or("CreateContainerConfigError")?;
            let dir = tempfile::Builder::new()
                .prefix("kubelet-secret-")
                .tempdir()
                .map_err(|_| "CreateContainerError")?;
            let mode = volume["secret"]["defaultMode"].as_u64().unwrap_or(0o644) as u32;
            for (key, value) in data {
                use std::os::unix::fs::PermissionsExt;
                let file = dir.path().join(key);
                std::fs::write(&file, value).map_err(|_| "CreateContainerError")?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode))
                    .map_err(|_| "CreateContainerError")?;
            }
            secret_mounts.push((mount_path, dir.path().to_path_buf()));
            dirs.push(dir);
            continue;
        }
        if volume["emptyDir"].is_null() {
            return Err("CreateContainerConfigError");
        }
        let dir = tempfile::Builder::new()
            .prefix("kubelet-emptydir-")
            .tempdir()
            .map_err(|_| "CreateContainerError")?;
        mounts.push((mount_path, dir.path().to_path_buf()));
        dirs.push(dir);
    }
    let map_path = |value: &str| -> String {
        for (mount, dir) in &mounts {
            if value == mount {
                return dir.display().to_string();
            }
        }
        // A file of a mounted Secret (`/var/run/secrets/x/key`): its mount path is no host
        // path a test passes, so a prefix is mapped too.
        for (mount, dir) in &secret_mounts {
            if let Some(file) = value.strip_prefix(&format!("{mount}/")) {
                return dir.join(file).display().to_string();
            }
        }
        for (path, file) in &files {
            if value == path {
                return file.clone();
            }
        }
        value.to_owned()
    };
    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
        ),
        ("HOSTNAME".into(), name_of(pod).to_owned()),
    ];
    for from in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(secret) = from["secretRef"]["name"].as_str() {
            match secret_data(secret) {
                Some(data) => {
                    let prefix = from["prefix"].as_str().unwrap_or_default();
                    env.extend(data.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)));
                }
                None if from["secretRef"]["optional"] == true => {}
                None => return Err("CreateContainerConfigError"),
            }
        } else {
            return Err("CreateContainerConfigError");
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap_or_default().to_owned();
        let value = if let Some(v) = var["value"].as_str() {
            map_path(v)
        } else if let Some(r) = var["valueFrom"]["secretKeyRef"].as_object() {
            let secret = r.get("name").and_then(Value::as_str).unwrap_or_default();
            let key = r.get("key").and_then(Value::as_str).unwrap_or_default();
            match secret_data(secret).and_then(|d| d.get(key).cloned()) {
                Some(v) => v,
                None if r.get("optional") == Some(&json!(true)) => continue,
                None => return Err("CreateContainerConfigError"),
            }
        } else if var["valueFrom"].is_null() {
            String::new()
        } else {
            return Err("CreateContainerConfigError");
        };
        env.retain(|(k, _)| *k != name);
        env.push((name, value));
    }
    let command: Vec<String> = container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(container["args"].as_array().into_iter().flatten())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let mut cmd = tokio::process::Command::new(&binary);
    cmd.args(command.iter().skip(1))
        .env_clear()
        .envs(env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let workdir = container["workingDir"].as_str().map(map_path);
    if let Some(dir) = workdir.or_else(|| dirs.first().map(|d| d.path().display().to_string())) {
        cmd.current_dir(dir);
    }
    Ok((cmd, dirs))
}

/// SIGTERM to the process group, SIGKILL after `grace`.
async fn terminate(
    child: &mut tokio::process::Child,
    pgid: Option<i32>,
    grace: Duration,
) -> std::io::Result<std::process::ExitStatus> {
    if let Some(pgid) = pgid {
        signal_group(pgid, nix::sys::signal::Signal::SIGTERM);
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            if let Some(pgid) = pgid {
                signal_group(pgid, nix::sys::signal::Signal::SIGKILL);
            }
            child.wait().await
        }
    }
}

fn signal_group(pgid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal);
}

/// Applies a status change to the stored Pod (a MODIFIED event), if it is still the same Pod.
fn update_pod(shared: &Shared, name: &str, uid: &str, change: impl FnOnce(&mut Value)) {
    let rv = {
        let mut store = shared.lock();
        let Some(current) = store.objects.get(&(Kind::Pod, name.to_owned())) else {
            return;
        };
        if current["metadata"]["uid"] != uid {
            return;
        }
        let mut pod = current.clone();
        change(&mut pod);
        store.put(Kind::Pod, pod, "MODIFIED");
        store.rv
    };
    shared.changed.send_replace(rv);
}

/// The process is gone: a Pod marked for deletion is removed now.
fn finish(shared: &Arc<Shared>, name: &str, uid: &str) {
    let rv = {
        let mut store = shared.lock();
        store.kubelets.remove(uid);
        let marked = store
            .objects
            .get(&(Kind::Pod, name.to_owned()))
            .is_some_and(|p| {
                p["metadata"]["uid"] == uid && !p["metadata"]["deletionTimestamp"].is_null()
            });
        if marked {
            store.remove(Kind::Pod, name);
        }
        store.rv
    };
    shared.changed.send_replace(rv);
    collect_garbage(shared);
}
