//! The built objects: snapshots, every security setting one by one, the token's confinement.
//!
//! Snapshots live in `crates/scheduler/tests/snapshots/`; after an intended change, rerun with
//! `PICKET_UPDATE_SNAPSHOTS=1` and review the diff.

use super::build;
use super::{parse_egress, ApiPeer, Cidr, DnsEgress, KubeConfig, Resources};
use crate::executor::Launch;
use picket_core::{InstallationId, OrgId, ScanId};
use secrecy::SecretString;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

const TOKEN: &str = "pks_snapshot-token-0123456789abcdefCANARY";
const SECRET_UID: &str = "6c1f0f3e-5b1b-4bb1-9f3e-0d6c8f9a1b2c";

pub(super) fn launch() -> Launch {
    Launch {
        installation: "5ca1ab1e0c0d".parse::<InstallationId>().unwrap(),
        scan_id: "01890a5d-ac96-774b-bcce-b302099a8057"
            .parse::<ScanId>()
            .unwrap(),
        attempt: 2,
        org_id: "01890a5d-ac96-774b-bcce-b302099a8058"
            .parse::<OrgId>()
            .unwrap(),
        token: SecretString::from(TOKEN),
        deadline: Duration::from_secs(3600),
    }
}

pub(super) fn config() -> KubeConfig {
    KubeConfig {
        namespace: "picket-scans".into(),
        image: "ghcr.io/picket-dev/picket@sha256:\
                0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .into(),
        service_account: "picket-worker".into(),
        api_url: "http://picket-api.picket.svc:8080".into(),
        dns: DnsEgress::KubeDns,
        api_peer: None,
        egress: parse_egress("10.96.0.0/12:8080,0.0.0.0/0:443,[2001:db8::/32]:443").unwrap(),
        resources: Resources::default(),
        env: vec![("PICKET_LOG_FORMAT".into(), "json".into())],
        ca_bundle: None,
    }
}

fn objects() -> [(&'static str, Value); 3] {
    let (cfg, launch) = (config(), launch());
    let owner = build::owner_reference(&launch.env_name(), SECRET_UID);
    [
        (
            "secret",
            serde_json::to_value(build::secret(&cfg, &launch)).unwrap(),
        ),
        (
            "networkpolicy",
            serde_json::to_value(build::network_policy(&cfg, &launch, &owner)).unwrap(),
        ),
        (
            "pod",
            serde_json::to_value(build::pod(&cfg, &launch, &owner)).unwrap(),
        ),
    ]
}

#[test]
fn built_objects_match_their_snapshots() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/snapshots"));
    let update = std::env::var_os("PICKET_UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (kind, value) in objects() {
        let path = dir.join(format!("kube-{kind}.json"));
        let pretty = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if update {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &pretty).unwrap();
            continue;
        }
        let stored: Option<Value> = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok());
        if stored.as_ref() != Some(&value) {
            stale.push(format!(
                "--- {} is stale; the object is now:\n{pretty}",
                path.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "{}\nrerun with PICKET_UPDATE_SNAPSHOTS=1 to rewrite the snapshots, and review the diff",
        stale.join("\n")
    );
}

/// Each security-relevant setting, asserted on its own so a failure names it.
#[test]
fn every_security_setting_is_in_place() {
    let [(_, secret), (_, np), (_, pod)] = objects();
    let env_name = launch().env_name();
    let c = "/spec/containers/0";
    let table: Vec<(&str, &Value, String, Value)> = vec![
        (
            "pod: never restarted",
            &pod,
            "/spec/restartPolicy".into(),
            json!("Never"),
        ),
        (
            "pod: no service account token",
            &pod,
            "/spec/automountServiceAccountToken".into(),
            json!(false),
        ),
        (
            "pod: dedicated service account",
            &pod,
            "/spec/serviceAccountName".into(),
            json!("picket-worker"),
        ),
        (
            "pod: no service links",
            &pod,
            "/spec/enableServiceLinks".into(),
            json!(false),
        ),
        (
            "pod: no host network",
            &pod,
            "/spec/hostNetwork".into(),
            json!(false),
        ),
        (
            "pod: no host PID",
            &pod,
            "/spec/hostPID".into(),
            json!(false),
        ),
        (
            "pod: no host IPC",
            &pod,
            "/spec/hostIPC".into(),
            json!(false),
        ),
        (
            "pod: runs as non-root",
            &pod,
            "/spec/securityContext/runAsNonRoot".into(),
            json!(true),
        ),
        (
            "pod: numeric user",
            &pod,
            "/spec/securityContext/runAsUser".into(),
            json!(10001),
        ),
        (
            "pod: numeric group",
            &pod,
            "/spec/securityContext/runAsGroup".into(),
            json!(10001),
        ),
        (
            "pod: fsGroup",
            &pod,
            "/spec/securityContext/fsGroup".into(),
            json!(10001),
        ),
        (
            "pod: seccomp RuntimeDefault",
            &pod,
            "/spec/securityContext/seccompProfile".into(),
            json!({"type": "RuntimeDefault"}),
        ),
        (
            "pod: own deadline",
            &pod,
            "/spec/activeDeadlineSeconds".into(),
            json!(3600),
        ),
        (
            "pod: short grace period",
            &pod,
            "/spec/terminationGracePeriodSeconds".into(),
            json!(15),
        ),
        (
            "pod: one container",
            &pod,
            "/spec/containers/1".into(),
            Value::Null,
        ),
        (
            "pod: no init containers",
            &pod,
            "/spec/initContainers".into(),
            Value::Null,
        ),
        (
            "pod: the work emptyDir first",
            &pod,
            "/spec/volumes/0".into(),
            json!({"name": "work", "emptyDir": {"sizeLimit": "3Gi"}}),
        ),
        (
            "container: no privilege escalation",
            &pod,
            format!("{c}/securityContext/allowPrivilegeEscalation"),
            json!(false),
        ),
        (
            "container: not privileged",
            &pod,
            format!("{c}/securityContext/privileged"),
            json!(false),
        ),
        (
            "container: drops ALL capabilities",
            &pod,
            format!("{c}/securityContext/capabilities"),
            json!({"drop": ["ALL"]}),
        ),
        (
            "container: read-only root",
            &pod,
            format!("{c}/securityContext/readOnlyRootFilesystem"),
            json!(true),
        ),
        (
            "container: runs as non-root",
            &pod,
            format!("{c}/securityContext/runAsNonRoot"),
            json!(true),
        ),
        (
            "container: numeric user",
            &pod,
            format!("{c}/securityContext/runAsUser"),
            json!(10001),
        ),
        (
            "container: seccomp RuntimeDefault",
            &pod,
            format!("{c}/securityContext/seccompProfile"),
            json!({"type": "RuntimeDefault"}),
        ),
        (
            "container: image by digest",
            &pod,
            format!("{c}/image"),
            json!(config().image),
        ),
        (
            "container: the worker command",
            &pod,
            format!("{c}/command"),
            json!(["/usr/local/bin/picket", "worker"]),
        ),
        ("container: no args", &pod, format!("{c}/args"), Value::Null),
        (
            "container: no ports",
            &pod,
            format!("{c}/ports"),
            Value::Null,
        ),
        (
            "container: work dir mounted",
            &pod,
            format!("{c}/volumeMounts"),
            json!([
                {"name": "work", "mountPath": "/work"},
                {"name": "scan-token", "mountPath": "/var/run/secrets/picket", "readOnly": true},
            ]),
        ),
        (
            "container: TMPDIR on the work dir",
            &pod,
            format!("{c}/env/0"),
            json!({"name": "TMPDIR", "value": "/work"}),
        ),
        (
            "container: HOME on the work dir",
            &pod,
            format!("{c}/env/1"),
            json!({"name": "HOME", "value": "/work"}),
        ),
        (
            "container: the API's URL, plain",
            &pod,
            format!("{c}/env/2"),
            json!({"name": "PICKET_API_URL", "value": "http://picket-api.picket.svc:8080"}),
        ),
        (
            "container: the token as a file of the mounted Secret",
            &pod,
            format!("{c}/env/3"),
            json!({"name": "PICKET_SCAN_TOKEN_FILE", "value": "/var/run/secrets/picket/scan-token"}),
        ),
        (
            "container: no environment from a Secret (CKV_K8S_35)",
            &pod,
            format!("{c}/envFrom"),
            Value::Null,
        ),
        (
            "pod: then the Secret's volume, readable by the worker's group only",
            &pod,
            "/spec/volumes/1".into(),
            json!({"name": "scan-token", "secret": {
                "secretName": env_name, "defaultMode": 0o440, "optional": false,
            }}),
        ),
        (
            "container: cpu limit",
            &pod,
            format!("{c}/resources/limits/cpu"),
            json!("2"),
        ),
        (
            "container: memory limit",
            &pod,
            format!("{c}/resources/limits/memory"),
            json!("2Gi"),
        ),
        (
            "container: ephemeral-storage limit",
            &pod,
            format!("{c}/resources/limits/ephemeral-storage"),
            json!("4Gi"),
        ),
        (
            "container: cpu request",
            &pod,
            format!("{c}/resources/requests/cpu"),
            json!("500m"),
        ),
        (
            "container: memory request",
            &pod,
            format!("{c}/resources/requests/memory"),
            json!("1Gi"),
        ),
        (
            "container: ephemeral-storage request",
            &pod,
            format!("{c}/resources/requests/ephemeral-storage"),
            json!("1Gi"),
        ),
        (
            "pod: owned by the Secret",
            &pod,
            "/metadata/ownerReferences".into(),
            json!([{"apiVersion": "v1", "kind": "Secret", "name": env_name, "uid": SECRET_UID, "controller": false}]),
        ),
        (
            "policy: owned by the Secret",
            &np,
            "/metadata/ownerReferences".into(),
            json!([{"apiVersion": "v1", "kind": "Secret", "name": env_name, "uid": SECRET_UID, "controller": false}]),
        ),
        (
            "policy: selects only this pod",
            &np,
            "/spec/podSelector".into(),
            json!({"matchLabels": {"picket.dev/env": env_name}}),
        ),
        (
            "policy: governs ingress and egress",
            &np,
            "/spec/policyTypes".into(),
            json!(["Ingress", "Egress"]),
        ),
        (
            "policy: no ingress rule at all",
            &np,
            "/spec/ingress".into(),
            Value::Null,
        ),
        (
            "policy: DNS to the cluster DNS only",
            &np,
            "/spec/egress/0".into(),
            json!({
                "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            }),
        ),
        (
            "policy: allowlist entry 1",
            &np,
            "/spec/egress/1".into(),
            json!({"to": [{"ipBlock": {"cidr": "10.96.0.0/12"}}], "ports": [{"protocol": "TCP", "port": 8080}]}),
        ),
        (
            "policy: allowlist entry 2",
            &np,
            "/spec/egress/2".into(),
            json!({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]}),
        ),
        (
            "policy: allowlist entry 3",
            &np,
            "/spec/egress/3".into(),
            json!({"to": [{"ipBlock": {"cidr": "2001:db8::/32"}}], "ports": [{"protocol": "TCP", "port": 443}]}),
        ),
        (
            "policy: nothing else",
            &np,
            "/spec/egress/4".into(),
            Value::Null,
        ),
        ("secret: Opaque", &secret, "/type".into(), json!("Opaque")),
        (
            "secret: immutable",
            &secret,
            "/immutable".into(),
            json!(true),
        ),
        (
            "secret: owns nothing above it",
            &secret,
            "/metadata/ownerReferences".into(),
            Value::Null,
        ),
        (
            "secret: holds the token and nothing else",
            &secret,
            "/data".into(),
            json!({"scan-token": b64(TOKEN.as_bytes())}),
        ),
    ];
    let mut failed = Vec::new();
    for (what, object, pointer, expected) in &table {
        let actual = object.pointer(pointer).cloned().unwrap_or(Value::Null);
        if &actual != expected {
            failed.push(format!(
                "{what}: {pointer} is {actual}, expected {expected}"
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} settings are wrong:\n{}",
        failed.len(),
        table.len(),
        failed.join("\n")
    );
}

#[test]
fn every_object_carries_the_marks_and_only_ids() {
    let launch = launch();
    let expected = json!({
        "app.kubernetes.io/managed-by": "picket",
        "app.kubernetes.io/component": "scan",
        "picket.dev/installation": "5ca1ab1e0c0d",
        "picket.dev/scan-id": "01890a5d-ac96-774b-bcce-b302099a8057",
        "picket.dev/attempt": "2",
        "picket.dev/env": "picket-5ca1ab1e0c0d-01890a5d-ac96-774b-bcce-b302099a8057-2",
    });
    for (kind, object) in objects() {
        assert_eq!(
            object["metadata"]["name"],
            json!(launch.env_name()),
            "{kind}"
        );
        assert_eq!(
            object["metadata"]["namespace"],
            json!("picket-scans"),
            "{kind}"
        );
        assert_eq!(object["metadata"]["labels"], expected, "{kind}");
        assert_eq!(object["metadata"]["annotations"], Value::Null, "{kind}");
    }
}

#[test]
fn the_token_is_only_in_the_secret() {
    let encoded = b64(TOKEN.as_bytes());
    for (kind, object) in objects() {
        let text = object.to_string();
        let meta = object["metadata"].to_string();
        assert!(
            !meta.contains(TOKEN) && !meta.contains(&encoded),
            "{kind} metadata"
        );
        if kind == "secret" {
            let mut without = object.clone();
            without["data"]
                .as_object_mut()
                .unwrap()
                .remove("scan-token");
            assert!(
                !without.to_string().contains(&encoded),
                "the token is held once"
            );
        } else {
            assert!(
                !text.contains(TOKEN) && !text.contains(&encoded),
                "{kind} holds the token"
            );
            assert!(!text.contains("pks_"), "{kind} holds a token");
        }
    }
}

#[test]
fn the_api_pods_are_reached_by_selector() {
    let mut cfg = config();
    cfg.api_peer = Some(
        ApiPeer::parse("picket/app.kubernetes.io/name=picket,app.kubernetes.io/component=api:8080")
            .unwrap(),
    );
    let launch = launch();
    let owner = build::owner_reference(&launch.env_name(), SECRET_UID);
    let np = serde_json::to_value(build::network_policy(&cfg, &launch, &owner)).unwrap();
    assert_eq!(
        np.pointer("/spec/egress/1").unwrap(),
        &json!({
            "to": [{
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "picket"}},
                "podSelector": {"matchLabels": {
                    "app.kubernetes.io/component": "api",
                    "app.kubernetes.io/name": "picket"
                }}
            }],
            "ports": [{"protocol": "TCP", "port": 8080}]
        })
    );
    for bad in [
        "picket:8080",
        "picket/:8080",
        "picket/a=b",
        "/a=b:1",
        "picket/a=b:0",
    ] {
        assert!(ApiPeer::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn dns_can_be_limited_to_addresses() {
    let mut cfg = config();
    cfg.dns = DnsEgress::Cidrs(vec!["169.254.20.10/32".parse::<Cidr>().unwrap()]);
    let launch = launch();
    let owner = build::owner_reference(&launch.env_name(), SECRET_UID);
    let np = serde_json::to_value(build::network_policy(&cfg, &launch, &owner)).unwrap();
    assert_eq!(
        np.pointer("/spec/egress/0/to").unwrap(),
        &json!([{"ipBlock": {"cidr": "169.254.20.10/32"}}])
    );
}

#[test]
fn the_pod_deadline_follows_the_launch() {
    let mut launch = launch();
    launch.deadline = Duration::from_secs(90);
    let owner = build::owner_reference(&launch.env_name(), SECRET_UID);
    let pod = build::pod(&config(), &launch, &owner);
    assert_eq!(pod.spec.unwrap().active_deadline_seconds, Some(90));
}

#[test]
fn the_ca_bundle_is_one_config_map_mounted_read_only_by_every_pod() {
    let pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let cm = serde_json::to_value(build::ca_bundle_config_map("picket-scans", pem)).unwrap();
    let name = cm["metadata"]["name"].as_str().unwrap().to_owned();
    // Named after the content: the same bundle is the same object, another one a new object.
    assert_eq!(
        name,
        format!(
            "picket-ca-bundle-{}",
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(pem))[..16]
        )
    );
    assert_ne!(
        build::ca_bundle_config_map("picket-scans", b"other")
            .metadata
            .name,
        Some(name.clone())
    );
    assert_eq!(
        cm,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": name, "namespace": "picket-scans",
                "labels": {"app.kubernetes.io/managed-by": "picket",
                           "app.kubernetes.io/component": "ca-bundle"},
            },
            "immutable": true,
            "binaryData": {"ca-bundle.pem": b64(pem)},
        })
    );
    // Not a scan's object: the reaper's selector does not match it.
    assert!(!build::MARKS_SELECTOR.contains("ca-bundle"));

    let mut cfg = config();
    cfg.ca_bundle = Some(name.clone());
    let launch = launch();
    let owner = build::owner_reference(&launch.env_name(), SECRET_UID);
    let with = serde_json::to_value(build::pod(&cfg, &launch, &owner)).unwrap();
    let without = serde_json::to_value(build::pod(&config(), &launch, &owner)).unwrap();
    // The last volume and mount (after the scratch space and the token).
    let volumes = with.pointer("/spec/volumes").unwrap().as_array().unwrap();
    assert_eq!(
        volumes.last().unwrap(),
        &json!({"name": "ca-bundle",
                "configMap": {"name": name, "defaultMode": 0o444, "optional": false}})
    );
    let container = with.pointer("/spec/containers/0").unwrap();
    assert_eq!(
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .last()
            .unwrap(),
        &json!({"name": "ca-bundle", "mountPath": "/etc/picket/ca", "readOnly": true})
    );
    let env = container["env"].as_array().unwrap();
    assert_eq!(
        env.last().unwrap(),
        &json!({"name": "PICKET_CA_BUNDLE", "value": "/etc/picket/ca/ca-bundle.pem"})
    );
    // Nothing else changes: the same Pod plus one volume, one mount, one variable.
    let mut trimmed = with.clone();
    trimmed["spec"]["volumes"].as_array_mut().unwrap().pop();
    let c = &mut trimmed["spec"]["containers"][0];
    c["volumeMounts"].as_array_mut().unwrap().pop();
    c["env"].as_array_mut().unwrap().pop();
    assert_eq!(trimmed, without);
    // The operator cannot set the variable the executor owns.
    cfg.env.push(("PICKET_CA_BUNDLE".into(), "/tmp/x".into()));
    assert!(cfg.check().is_err());
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
