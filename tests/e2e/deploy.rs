//! `deploy/`: every Kustomize overlay renders with the pinned kubectl and validates against the
//! API schemas of the Kubernetes version Picket targets; the rendered objects keep the isolation
//! the design relies on (domain.md §4); the image's Dockerfile agrees with the Makefile's pins.
//! Each check is also shown to fail on a broken input. No database needed.

use picket_tests::k8s;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const SCANS_NS: &str = "picket-scans";
const CONTROL_NS: &str = "picket";

/// The overlays under deploy/overlays/, by directory name.
fn overlays() -> Vec<String> {
    let dir = k8s::repo_root().join("deploy/overlays");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry"))
        .filter(|entry| entry.path().join("kustomization.yaml").is_file())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for expected in ["dev", "production"] {
        assert!(
            names.iter().any(|n| n == expected),
            "no overlay {expected}: {names:?}"
        );
    }
    names
}

fn render(overlay: &str) -> Vec<Value> {
    k8s::render(format!("deploy/overlays/{overlay}"))
}

#[test]
fn every_overlay_renders_and_validates_against_the_pinned_kubernetes() {
    for overlay in overlays() {
        let objects = render(&overlay);
        if let Err(report) = k8s::validate(&objects) {
            panic!("deploy/overlays/{overlay} does not validate:\n{report}");
        }
    }
}

#[test]
fn the_api_and_the_scheduler_get_the_environment_they_read() {
    for overlay in overlays() {
        let objects = render(&overlay);
        let api = environment(&objects, "picket-api");
        let scheduler = environment(&objects, "picket-scheduler");
        let at = format!("deploy/overlays/{overlay}");

        assert_eq!(api["PICKET_LISTEN"], "0.0.0.0:8080", "{at}");
        // Secrets are files of the mounted Secret, named by `<NAME>_FILE`.
        assert_eq!(
            secret_file(&objects, "picket-api", &api["DATABASE_URL_FILE"]),
            "secret picket-secrets/database-url",
            "{at}"
        );
        assert_eq!(
            secret_file(&objects, "picket-api", &api["PICKET_SECRET_KEY_FILE"]),
            "secret picket-secrets/secret-key",
            "{at}"
        );
        let api_port = &find(&objects, "Deployment", "picket-api")["spec"]["template"]["spec"]
            ["containers"][0]["ports"][0]["containerPort"];
        assert_eq!(*api_port, 8080, "{at}");

        assert_eq!(
            secret_file(
                &objects,
                "picket-scheduler",
                &scheduler["DATABASE_URL_FILE"]
            ),
            "secret picket-secrets/database-url",
            "{at}"
        );
        // The PR check loop decrypts connections' credentials with the same key as the API.
        assert_eq!(
            secret_file(
                &objects,
                "picket-scheduler",
                &scheduler["PICKET_SECRET_KEY_FILE"]
            ),
            "secret picket-secrets/secret-key",
            "{at}"
        );
        assert_eq!(scheduler["PICKET_EXECUTOR"], "kubernetes", "{at}");
        // The scheduler's probes reach the port its endpoints listen on.
        let sched = &find(&objects, "Deployment", "picket-scheduler")["spec"]["template"]["spec"]
            ["containers"][0];
        assert_eq!(scheduler["PICKET_SCHEDULER_LISTEN"], "0.0.0.0:9090", "{at}");
        assert_eq!(sched["ports"][0]["containerPort"], 9090, "{at}");
        for probe in ["readinessProbe", "livenessProbe"] {
            assert_eq!(
                sched[probe]["httpGet"]["port"], sched["ports"][0]["name"],
                "{at}"
            );
        }
        assert_eq!(scheduler["PICKET_SCAN_NAMESPACE"], SCANS_NS, "{at}");
        assert_eq!(
            scheduler["PICKET_WORKER_SERVICE_ACCOUNT"], "picket-scan",
            "{at}"
        );
        assert_eq!(
            scheduler["PICKET_WORKER_API_URL"], "http://picket-api.picket.svc:8080",
            "{at}"
        );
        // The scan pods reach the API pods by selector: the selector must name them.
        let api_pod_labels =
            &find(&objects, "Deployment", "picket-api")["spec"]["template"]["metadata"]["labels"];
        let selector =
            picket_scheduler::kube::ApiPeer::parse(&scheduler["PICKET_WORKER_API_SELECTOR"])
                .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(selector.namespace, "picket", "{at}");
        assert_eq!(selector.port, 8080, "{at}");
        for (k, v) in &selector.pod_labels {
            assert_eq!(api_pod_labels[k], v.as_str(), "{at}: API pod label {k}");
        }
        assert!(
            pinned(&scheduler["PICKET_WORKER_IMAGE"]),
            "{at}: {scheduler:?}"
        );
        let cap = scheduler["PICKET_MAX_CONCURRENT_SCANS"].parse::<u32>();
        assert!(cap.is_ok_and(|n| n > 0), "{at}: {scheduler:?}");
        // Comma-separated CIDR:port pairs.
        let allow = &scheduler["PICKET_EGRESS_ALLOW"];
        assert!(
            !allow.is_empty(),
            "{at}: no egress allowed, scans cannot clone"
        );
        for pair in allow.split(',') {
            assert!(
                egress_pair(pair),
                "{at}: PICKET_EGRESS_ALLOW entry {pair:?}"
            );
        }
    }
    // The parser bites.
    for bad in [
        "10.0.0.0/8",
        "10.0.0.0/33:443",
        "10.0.0:443",
        "10.0.0.0/8:0",
        "host:443",
        "",
    ] {
        assert!(!egress_pair(bad), "{bad:?} passed");
    }
    assert!(egress_pair("2001:db8::/32:443"));
}

/// The first container's environment of Deployment `name`: literal values, values looked up in
/// the ConfigMap they name, and `secret <name>/<key>` for Secret references.
fn environment(objects: &[Value], name: &str) -> std::collections::BTreeMap<String, String> {
    let deployment = find(objects, "Deployment", name);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    items(&container["env"])
        .map(|env| {
            let from = &env["valueFrom"];
            let value = if let Some(value) = env["value"].as_str() {
                value.to_owned()
            } else if !from["secretKeyRef"].is_null() {
                let r = &from["secretKeyRef"];
                format!(
                    "secret {}/{}",
                    r["name"].as_str().unwrap(),
                    r["key"].as_str().unwrap()
                )
            } else {
                let r = &from["configMapKeyRef"];
                let map = find(objects, "ConfigMap", r["name"].as_str().unwrap());
                let key = r["key"].as_str().unwrap();
                map["data"][key]
                    .as_str()
                    .unwrap_or_else(|| panic!("ConfigMap {} has no {key}", r["name"]))
                    .to_owned()
            };
            (env["name"].as_str().unwrap().to_owned(), value)
        })
        .collect()
}

/// What the file `path` is in the first container of Deployment `name`: `secret <name>/<key>`
/// when it lies in a read-only mount of a Secret volume holding that key.
fn secret_file(objects: &[Value], name: &str, path: &str) -> String {
    let pod = &find(objects, "Deployment", name)["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    for mount in items(&container["volumeMounts"]) {
        let Some(file) = mount["mountPath"]
            .as_str()
            .and_then(|m| path.strip_prefix(&format!("{m}/")))
        else {
            continue;
        };
        assert_eq!(mount["readOnly"], true, "{name}: {path} is writable");
        let volume = items(&pod["volumes"])
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("{name}: no volume {}", mount["name"]));
        let secret = &volume["secret"];
        let key = match secret["items"].as_array() {
            Some(items) => items
                .iter()
                .find(|i| i["path"] == file)
                .and_then(|i| i["key"].as_str())
                .unwrap_or_else(|| panic!("{name}: {path} is not projected"))
                .to_owned(),
            None => file.to_owned(),
        };
        return format!(
            "secret {}/{key}",
            secret["secretName"].as_str().unwrap_or("?")
        );
    }
    panic!("{name}: {path} is in no mounted volume")
}

/// `CIDR:port`, the CIDR IPv4 or IPv6 (the port follows the last colon).
fn egress_pair(pair: &str) -> bool {
    let Some((cidr, port)) = pair.rsplit_once(':') else {
        return false;
    };
    let Some((ip, bits)) = cidr.split_once('/') else {
        return false;
    };
    let max_bits = match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(_)) => 32,
        Ok(std::net::IpAddr::V6(_)) => 128,
        Err(_) => return false,
    };
    bits.parse::<u8>().is_ok_and(|b| b <= max_bits) && port.parse::<u16>().is_ok_and(|p| p > 0)
}

#[test]
fn the_validator_rejects_broken_objects() {
    let objects = render("production");
    let api = find(&objects, "Deployment", "picket-api").clone();
    k8s::validate(std::slice::from_ref(&api)).expect("the unbroken Deployment validates");

    let mut broken: Vec<(&str, Value)> = Vec::new();
    let mut wrong_type = api.clone();
    wrong_type["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] =
        json!("eighty");
    broken.push(("a string where an integer belongs", wrong_type));
    let mut unknown_field = api.clone();
    unknown_field["spec"]["replica"] = json!(1);
    broken.push(("an unknown field (strict)", unknown_field));
    let mut missing_required = api.clone();
    missing_required["spec"]
        .as_object_mut()
        .unwrap()
        .remove("selector");
    broken.push(("a missing required field", missing_required));
    broken.push((
        "a kind without a schema",
        json!({"apiVersion": "example.com/v1", "kind": "Frobnicator", "metadata": {"name": "x"}}),
    ));

    for (what, object) in broken {
        // Alone, and among valid objects: one bad object fails the whole set.
        let err = k8s::validate(&[api.clone(), object.clone()])
            .expect_err(&format!("{what} passed validation"));
        assert!(err.contains("1 of 2 objects passed"), "{what}: {err}");
        k8s::validate(&[object]).expect_err(&format!("{what} passed validation alone"));
    }
}

#[test]
fn rendered_overlays_keep_scans_isolated_and_the_control_plane_locked_down() {
    for overlay in overlays() {
        let problems = lockdown_problems(&render(&overlay));
        assert!(
            problems.is_empty(),
            "deploy/overlays/{overlay}:\n{}",
            problems.join("\n")
        );
    }
}

#[test]
fn the_lockdown_checks_catch_each_weakening() {
    let good = render("production");
    assert!(lockdown_problems(&good).is_empty());
    type Mutation = fn(&mut Vec<Value>);
    let weakenings: &[(&str, Mutation)] = &[
        ("scan namespace only baseline", |o| {
            find_mut(o, "Namespace", SCANS_NS)["metadata"]["labels"]
                ["pod-security.kubernetes.io/enforce"] = json!("baseline");
        }),
        ("default deny opened for egress", |o| {
            find_mut(o, "NetworkPolicy", "default-deny-all")["spec"]["egress"] = json!([{}]);
        }),
        ("default deny without Egress", |o| {
            find_mut(o, "NetworkPolicy", "default-deny-all")["spec"]["policyTypes"] =
                json!(["Ingress"]);
        }),
        ("another policy in the scan namespace", |o| {
            let mut extra = find(o, "NetworkPolicy", "default-deny-all").clone();
            extra["metadata"]["name"] = json!("allow-all");
            extra["spec"]["ingress"] = json!([{}]);
            o.push(extra);
        }),
        ("a ClusterRole", |o| {
            o.push(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": "x"}, "rules": []}),
            );
        }),
        ("the Role reaches configmaps", |o| {
            find_mut(o, "Role", "picket-scheduler")["rules"][0]["resources"]
                .as_array_mut()
                .unwrap()
                .push(json!("configmaps"));
        }),
        ("the Role reads configmaps", |o| {
            let rules = find_mut(o, "Role", "picket-scheduler")["rules"]
                .as_array_mut()
                .unwrap();
            let rule = rules
                .iter_mut()
                .find(|r| r["resources"] == json!(["configmaps"]))
                .unwrap();
            rule["verbs"].as_array_mut().unwrap().push(json!("get"));
        }),
        ("the Role may update", |o| {
            find_mut(o, "Role", "picket-scheduler")["rules"][0]["verbs"] = json!(["*"]);
        }),
        ("the Role in the control-plane namespace", |o| {
            find_mut(o, "Role", "picket-scheduler")["metadata"]["namespace"] = json!(CONTROL_NS);
        }),
        ("the binding grants a ClusterRole", |o| {
            find_mut(o, "RoleBinding", "picket-scheduler")["roleRef"]["kind"] =
                json!("ClusterRole");
        }),
        ("the scan account mounts a token", |o| {
            find_mut(o, "ServiceAccount", "picket-scan")["automountServiceAccountToken"] =
                json!(true);
        }),
        ("a writable root filesystem", |o| {
            container_mut(o, "Deployment", "picket-api")["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("readOnlyRootFilesystem");
        }),
        ("a capability kept", |o| {
            container_mut(o, "Deployment", "picket-scheduler")["securityContext"]["capabilities"] =
                json!({"drop": ["ALL"], "add": ["NET_RAW"]});
        }),
        ("a root container", |o| {
            container_mut(o, "Deployment", "picket-scheduler")["securityContext"]["runAsUser"] =
                json!(0);
        }),
        ("a root pod", |o| {
            find_mut(o, "Deployment", "picket-api")["spec"]["template"]["spec"]
                ["securityContext"]["runAsUser"] = json!(0);
        }),
        ("no seccomp profile", |o| {
            find_mut(o, "CronJob", "picket-migrate")["spec"]["jobTemplate"]["spec"]["template"]
                ["spec"]["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("seccompProfile");
            container_mut(o, "CronJob", "picket-migrate")["securityContext"]
                .as_object_mut()
                .unwrap()
                .remove("seccompProfile");
        }),
        ("no memory limit", |o| {
            container_mut(o, "Deployment", "picket-scheduler")["resources"]["limits"]
                .as_object_mut()
                .unwrap()
                .remove("memory");
        }),
        ("an image by tag", |o| {
            container_mut(o, "Deployment", "picket-api")["image"] =
                json!("ghcr.io/picket-dev/picket:latest");
        }),
        ("scans run another image", |o| {
            let env = container_mut(o, "Deployment", "picket-scheduler")["env"]
                .as_array_mut()
                .unwrap();
            let image = env
                .iter_mut()
                .find(|e| e["name"] == "PICKET_WORKER_IMAGE")
                .unwrap();
            image["value"] = json!(format!(
                "ghcr.io/picket-dev/picket@sha256:{}",
                "a".repeat(64)
            ));
        }),
        ("a committed Secret", |o| {
            o.push(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "picket-secrets", "namespace": CONTROL_NS},
                "stringData": {"secret-key": "00"}}));
        }),
        ("the database URL inline", |o| {
            container_mut(o, "Deployment", "picket-api")["env"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "DATABASE_URL", "value": "postgres://picket:pw@db/picket"}));
        }),
        ("a secret as an environment variable", |o| {
            container_mut(o, "Deployment", "picket-scheduler")["env"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": "DATABASE_URL", "valueFrom": {"secretKeyRef":
                    {"name": "picket-secrets", "key": "database-url"}}}));
        }),
        ("a Secret as the environment", |o| {
            container_mut(o, "Deployment", "picket-api")["envFrom"] =
                json!([{"secretRef": {"name": "picket-secrets"}}]);
        }),
        ("scans cannot reach the API", |o| {
            find_mut(o, "NetworkPolicy", "picket-api-ingress")["spec"]["ingress"] = json!([]);
        }),
    ];
    for (what, weaken) in weakenings {
        let mut objects = good.clone();
        weaken(&mut objects);
        assert!(
            !lockdown_problems(&objects).is_empty(),
            "the checks missed: {what}"
        );
    }
}

#[test]
fn the_dockerfile_agrees_with_the_makefile_and_runs_as_a_user() {
    let path = k8s::repo_root().join("deploy/Dockerfile");
    let dockerfile = std::fs::read_to_string(&path).expect("deploy/Dockerfile exists");
    let semgrep = k8s::makefile_var("SEMGREP_VERSION");
    let problems = dockerfile_problems(&dockerfile, &semgrep);
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        path.display(),
        problems.join("\n")
    );

    // The user the manifests run as is the image's.
    let uid = final_stage(&dockerfile)
        .iter()
        .rev()
        .find_map(|(op, args)| (op == "USER").then(|| args.split(':').next().unwrap().to_owned()))
        .unwrap();
    let api = find(&render("production"), "Deployment", "picket-api").clone();
    assert_eq!(
        api["spec"]["template"]["spec"]["securityContext"]["runAsUser"].to_string(),
        uid
    );

    // The checks bite.
    let root = dockerfile.replace("USER 10001:10001", "USER root");
    assert!(
        !dockerfile_problems(&root, &semgrep).is_empty(),
        "USER root passed"
    );
    let zero = dockerfile.replace("USER 10001:10001", "USER 0:0");
    assert!(
        !dockerfile_problems(&zero, &semgrep).is_empty(),
        "USER 0 passed"
    );
    let no_user = dockerfile.replace("USER 10001:10001", "");
    assert!(
        !dockerfile_problems(&no_user, &semgrep).is_empty(),
        "no USER passed"
    );
    let other = dockerfile.replace(
        &format!("SEMGREP_VERSION={semgrep}"),
        "SEMGREP_VERSION=1.0.0",
    );
    assert!(
        !dockerfile_problems(&other, &semgrep).is_empty(),
        "another Semgrep passed"
    );
}

// ---- the checks ----

/// Everything in `objects` that weakens the isolation of scans or the lockdown of the control
/// plane, one line each.
fn lockdown_problems(objects: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    scan_namespace_problems(objects, &mut problems);
    network_problems(objects, &mut problems);
    rbac_problems(objects, &mut problems);
    let mut workloads = 0;
    for o in objects {
        let pod = match o["kind"].as_str().unwrap_or("") {
            "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => &o["spec"]["template"]["spec"],
            "CronJob" => &o["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "Pod" => &o["spec"],
            _ => continue,
        };
        workloads += 1;
        pod_problems(o, pod, &mut problems);
    }
    if workloads < 3 {
        problems.push(format!(
            "{workloads} workloads: the API, the scheduler and the migration are expected"
        ));
    }
    problems
}

fn namespace(o: &Value) -> &str {
    o["metadata"]["namespace"].as_str().unwrap_or("")
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("?")
}

/// The scan namespace enforces, warns and audits "restricted", at the targeted version.
fn scan_namespace_problems(objects: &[Value], problems: &mut Vec<String>) {
    let version = k8s::kubernetes_version();
    let minor = version
        .rsplit_once('.')
        .expect("KUBERNETES_VERSION is x.y.z")
        .0;
    let minor = format!("v{minor}");
    let Some(ns) = objects
        .iter()
        .find(|o| o["kind"] == "Namespace" && name(o) == SCANS_NS)
    else {
        problems.push(format!("no Namespace {SCANS_NS}"));
        return;
    };
    let labels = &ns["metadata"]["labels"];
    for (mode, want) in [
        ("enforce", "restricted"),
        ("enforce-version", minor.as_str()),
        ("warn", "restricted"),
        ("audit", "restricted"),
    ] {
        let key = format!("pod-security.kubernetes.io/{mode}");
        if labels[&key] != want {
            problems.push(format!(
                "Namespace {SCANS_NS}: {key} is {}, not {want}",
                labels[&key]
            ));
        }
    }
}

/// Exactly one NetworkPolicy in the scan namespace, denying everything to every pod (the
/// scheduler adds the per-scan ones at run time); scan pods may reach the API on 8080.
fn network_problems(objects: &[Value], problems: &mut Vec<String>) {
    let policies = |ns: &'static str| {
        objects
            .iter()
            .filter(move |o| o["kind"] == "NetworkPolicy" && namespace(o) == ns)
    };
    let scan_policies = policies(SCANS_NS).count();
    if scan_policies != 1 {
        problems.push(format!(
            "{scan_policies} NetworkPolicies in {SCANS_NS}, want only the default deny"
        ));
    }
    for np in policies(SCANS_NS) {
        let spec = &np["spec"];
        let types: BTreeSet<&str> = strings(&spec["policyTypes"]).collect();
        let selects_all = spec["podSelector"] == json!({});
        let no_rules = ["ingress", "egress"]
            .iter()
            .all(|k| strings(&spec[k]).count() == 0);
        if !selects_all || types != BTreeSet::from(["Egress", "Ingress"]) || !no_rules {
            problems.push(format!(
                "NetworkPolicy {} in {SCANS_NS} is not a default deny: {spec}",
                name(np)
            ));
        }
    }

    let admits_scans = |rule: &Value| {
        let from_scans = rule["from"].is_null()
            || items(&rule["from"]).any(|peer| {
                peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == SCANS_NS
                    && peer["podSelector"].is_null()
            });
        from_scans && items(&rule["ports"]).any(|port| port["port"] == 8080)
    };
    let scans_reach_api = policies(CONTROL_NS).any(|np| {
        np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api"
            && items(&np["spec"]["ingress"]).any(admits_scans)
    });
    if !scans_reach_api {
        problems.push(format!(
            "no NetworkPolicy lets {SCANS_NS} reach the API pods on 8080"
        ));
    }
}

/// One Role, in the scan namespace, on pods, secrets and networkpolicies only (and the creation
/// of configmaps, for the CA bundle), bound to the scheduler alone; nothing cluster-wide; no
/// committed Secret; the scan identity has no token.
fn rbac_problems(objects: &[Value], problems: &mut Vec<String>) {
    const CRUD: &[&str] = &["get", "list", "watch", "create", "delete"];
    let allowed: &[(&str, &str, &[&str])] = &[
        ("", "pods", CRUD),
        ("", "pods/log", &["get"]),
        ("", "secrets", CRUD),
        ("networking.k8s.io", "networkpolicies", CRUD),
        // The CA bundle's ConfigMap, made once at start.
        ("", "configmaps", &["create"]),
    ];
    let scheduler = json!([
        {"kind": "ServiceAccount", "name": "picket-scheduler", "namespace": CONTROL_NS}
    ]);
    for o in objects {
        let (kind, name) = (o["kind"].as_str().unwrap_or(""), name(o));
        match kind {
            "ClusterRole" | "ClusterRoleBinding" => {
                problems.push(format!("{kind} {name}: nothing may be cluster-wide"));
            }
            "Secret" => problems.push(format!(
                "Secret {name}: secrets are created by the operator, never committed"
            )),
            "Role" if namespace(o) != SCANS_NS => {
                problems.push(format!("Role {name} outside {SCANS_NS}"));
            }
            "Role" => {
                for rule in items(&o["rules"]) {
                    if !rule["resourceNames"].is_null() || !rule["nonResourceURLs"].is_null() {
                        problems.push(format!("Role {name}: unexpected rule {rule}"));
                    }
                    for group in strings(&rule["apiGroups"]) {
                        for resource in strings(&rule["resources"]) {
                            for verb in strings(&rule["verbs"]) {
                                let ok = allowed.iter().any(|(g, r, verbs)| {
                                    *g == group && *r == resource && verbs.contains(&verb)
                                });
                                if !ok {
                                    problems.push(format!(
                                        "Role {name} grants {verb} on {group}/{resource}"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            "RoleBinding" => {
                let ok = namespace(o) == SCANS_NS
                    && o["roleRef"]["kind"] == "Role"
                    && o["roleRef"]["name"] == "picket-scheduler"
                    && o["subjects"] == scheduler;
                if !ok {
                    problems.push(format!(
                        "RoleBinding {name} grants more than the scheduler's Role to the \
                         scheduler: {o}"
                    ));
                }
            }
            _ => {}
        }
    }

    let scan_sa = objects.iter().find(|o| {
        o["kind"] == "ServiceAccount" && name(o) == "picket-scan" && namespace(o) == SCANS_NS
    });
    if scan_sa.is_none_or(|sa| sa["automountServiceAccountToken"] != false) {
        problems.push(format!(
            "ServiceAccount picket-scan must exist in {SCANS_NS} with \
             automountServiceAccountToken: false"
        ));
    }
}

/// A workload's pod template: restricted security context at pod and container level,
/// resources, images by digest, secrets only as mounted files, no token unless it is the
/// scheduler's, and PICKET_WORKER_IMAGE the scheduler's own image.
fn pod_problems(o: &Value, pod: &Value, problems: &mut Vec<String>) {
    let at = format!("{} {}", o["kind"].as_str().unwrap_or("?"), name(o));
    if namespace(o) != CONTROL_NS {
        problems.push(format!(
            "{at}: workloads belong in {CONTROL_NS}; scan pods are the scheduler's"
        ));
    }
    if pod["serviceAccountName"] != "picket-scheduler"
        && pod["automountServiceAccountToken"] != false
    {
        problems.push(format!(
            "{at}: mounts a service account token it does not need"
        ));
    }
    // Pod-level defaults too, so every container (init, ephemeral) inherits them.
    let pod_sc = &pod["securityContext"];
    if pod_sc["runAsNonRoot"] != true
        || !non_zero_id(&pod_sc["runAsUser"])
        || pod_sc["seccompProfile"]["type"] != "RuntimeDefault"
    {
        problems.push(format!(
            "{at}: the pod securityContext is not runAsNonRoot, a non-zero runAsUser and \
             RuntimeDefault seccomp: {pod_sc}"
        ));
    }
    for c in items(&pod["initContainers"]).chain(items(&pod["containers"])) {
        let at = format!("{at} container {}", c["name"].as_str().unwrap_or("?"));
        let sc = &c["securityContext"];
        // A container's setting wins over the pod's.
        let effective = |k: &str| if sc[k].is_null() { &pod_sc[k] } else { &sc[k] };
        let mut problem = |what: &str| problems.push(format!("{at}: {what}"));
        if effective("runAsNonRoot") != true {
            problem("runAsNonRoot is not true");
        }
        if !non_zero_id(effective("runAsUser")) {
            problem("runAsUser is not a non-zero number");
        }
        if effective("seccompProfile")["type"] != "RuntimeDefault" {
            problem("seccompProfile is not RuntimeDefault");
        }
        if sc["allowPrivilegeEscalation"] != false {
            problem("allowPrivilegeEscalation is not false");
        }
        if sc["readOnlyRootFilesystem"] != true {
            problem("readOnlyRootFilesystem is not true");
        }
        if sc["capabilities"] != json!({"drop": ["ALL"]}) {
            problem("capabilities are not exactly `drop: [ALL]`");
        }
        if sc["privileged"] == true {
            problem("privileged");
        }
        for bound in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                if c["resources"][bound][resource].is_null() {
                    problem(&format!("no {resource} {bound}"));
                }
            }
        }
        let image = c["image"].as_str().unwrap_or("");
        if !pinned(image) {
            problem(&format!("image {image} is not pinned by digest"));
        }
        // Secrets are mounted files (`<NAME>_FILE`), never environment variables, whose
        // values every child process inherits (checkov CKV_K8S_35).
        if items(&c["envFrom"]).any(|e| !e["secretRef"].is_null()) {
            problem("takes its environment from a Secret (envFrom.secretRef)");
        }
        for env in items(&c["env"]) {
            let var = env["name"].as_str().unwrap_or("");
            if !env["valueFrom"]["secretKeyRef"].is_null() {
                problem(&format!("{var} is a Secret as an environment variable"));
            }
            if ["DATABASE_URL", "PICKET_SECRET_KEY"].contains(&var) {
                problem(&format!(
                    "{var} is set in the environment, not as a file ({var}_FILE)"
                ));
            }
            if var == "PICKET_WORKER_IMAGE" && env["value"] != image {
                problem(&format!(
                    "PICKET_WORKER_IMAGE {} is not its own image {image}",
                    env["value"]
                ));
            }
        }
    }
}

/// The elements of a JSON array (none for anything else, e.g. an absent field).
fn items(v: &Value) -> impl Iterator<Item = &Value> {
    v.as_array().into_iter().flatten()
}

/// The string elements of a JSON array; a non-string element shows as "?".
fn strings(v: &Value) -> impl Iterator<Item = &str> {
    items(v).map(|s| s.as_str().unwrap_or("?"))
}

/// A number above 0 (a uid other than root's).
fn non_zero_id(id: &Value) -> bool {
    id.as_u64().is_some_and(|id| id > 0)
}

/// `registry/name@sha256:<64 lowercase hex>`.
fn pinned(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(name, digest)| {
        !name.is_empty()
            && digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// What is wrong with the Dockerfile: its final stage must declare `ARG SEMGREP_VERSION=` the
/// Makefile's version and end up as a numeric, non-root `USER`.
fn dockerfile_problems(dockerfile: &str, semgrep_version: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let stage = final_stage(dockerfile);
    let arg = stage.iter().find_map(|(op, args)| {
        (op == "ARG")
            .then(|| args.strip_prefix("SEMGREP_VERSION="))
            .flatten()
    });
    if arg != Some(semgrep_version) {
        problems.push(format!(
            "the final stage's ARG SEMGREP_VERSION is {arg:?}, the Makefile's is {semgrep_version}"
        ));
    }
    match stage.iter().rev().find(|(op, _)| op == "USER") {
        None => problems.push("the final stage sets no USER: it would run as root".to_owned()),
        Some((_, user)) => {
            let numeric_non_zero = |id: &str| id.parse::<u32>().is_ok_and(|id| id > 0);
            let mut ids = user.split(':');
            let uid_ok = ids.next().is_some_and(numeric_non_zero);
            let gid_ok = ids.next().is_none_or(numeric_non_zero);
            if !uid_ok || !gid_ok {
                problems.push(format!("USER {user} is not a numeric, non-root uid[:gid]"));
            }
        }
    }
    problems
}

/// The final stage's instructions (after the last FROM) as (INSTRUCTION, arguments), with
/// continuation lines joined and comments dropped.
fn final_stage(dockerfile: &str) -> Vec<(String, String)> {
    let mut instructions: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(trimmed);
        let full = std::mem::take(&mut pending);
        let (op, args) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        instructions.push((op.to_ascii_uppercase(), args.trim().to_owned()));
    }
    let last_from = instructions
        .iter()
        .rposition(|(op, _)| op == "FROM")
        .expect("the Dockerfile has a FROM");
    instructions.split_off(last_from + 1)
}

// ---- lookups ----

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn find_mut<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    objects
        .iter_mut()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

/// The first container of a Deployment's or CronJob's pod template.
fn container_mut<'a>(objects: &'a mut [Value], kind: &str, name: &str) -> &'a mut Value {
    let object = find_mut(objects, kind, name);
    let pod = if kind == "CronJob" {
        &mut object["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &mut object["spec"]["template"]["spec"]
    };
    &mut pod["containers"][0]
}

/// The pinned checkov (`make checkov` installs it into `.venv-tools/`), as a command. Its
/// `bin/checkov` is a plain script whose `#!` line names the venv's python by absolute path,
/// which the kernel cannot run when that path holds a space: the venv's python runs it.
fn checkov() -> std::process::Command {
    let venv = k8s::repo_root().join(".venv-tools/bin");
    let path = venv.join("checkov");
    let command = || {
        let mut c = std::process::Command::new(venv.join("python3"));
        c.arg(&path);
        c
    };
    let out = command()
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{} cannot run ({e}): run `make checkov`", path.display()));
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(
        version,
        k8s::makefile_var("CHECKOV_VERSION"),
        "{} is not the pinned version: run `make checkov`",
        path.display()
    );
    command()
}

/// checkov's CKV_K8S_35 ("prefer using secrets as files over secrets as environment
/// variables") over `objects`: the resources it passed and those it failed, as
/// `Kind.namespace.name`.
fn ckv_k8s_35(objects: &[Value]) -> (BTreeSet<String>, BTreeSet<String>) {
    let dir = tempfile::tempdir().unwrap();
    let yaml: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml_ng::to_string(o).unwrap())
        .collect();
    let file = dir.path().join("objects.yaml");
    std::fs::write(&file, yaml.join("---\n")).unwrap();
    let out = checkov()
        .args(["--framework", "kubernetes", "--check", "CKV_K8S_35"])
        .args(["--output", "json", "--skip-download", "--compact"])
        // A file, not its directory: checkov skips hidden directories (`/tmp/.tmpXXXX`).
        .arg("--file")
        .arg(&file)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov's report is no JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let resources = |key: &str| -> BTreeSet<String> {
        items(&report["results"][key])
            .filter(|c| c["check_id"] == "CKV_K8S_35")
            .map(|c| c["resource"].as_str().unwrap_or("?").to_owned())
            .collect()
    };
    (resources("passed_checks"), resources("failed_checks"))
}

/// No secret reaches a process's environment: the API, the scheduler and the migration job read
/// theirs from mounted files, and so does the scan Pod the Kubernetes executor builds.
#[test]
fn checkov_finds_secrets_only_as_files() {
    use picket_scheduler::kube::{build, KubeConfig};
    let launch = picket_scheduler::Launch {
        installation: "7e5700000002".parse().unwrap(),
        scan_id: picket_core::ScanId::new(),
        attempt: 1,
        org_id: picket_core::OrgId::new(),
        token: secrecy::SecretString::from("pks_checkov"),
        deadline: std::time::Duration::from_secs(600),
    };
    let cfg = KubeConfig::new(
        SCANS_NS,
        format!("ghcr.io/picket-dev/picket@sha256:{}", "a".repeat(64)),
        "picket-scan",
        "http://picket-api.picket.svc:8080",
    );
    let owner = build::owner_reference(&launch.env_name(), "0b5a2a4e-8a0b-4f5e-9d35-2c4b9f1e7a10");
    let scan_pod = serde_json::to_value(build::pod(&cfg, &launch, &owner)).unwrap();
    let scan_pod_name = format!("Pod.{SCANS_NS}.{}", launch.env_name());
    for overlay in overlays() {
        let mut objects = render(&overlay);
        objects.push(scan_pod.clone());
        let (passed, failed) = ckv_k8s_35(&objects);
        assert!(failed.is_empty(), "deploy/overlays/{overlay}: {failed:?}");
        for resource in [
            "Deployment.picket.picket-api",
            "Deployment.picket.picket-scheduler",
            "CronJob.picket.picket-migrate",
            &scan_pod_name,
        ] {
            assert!(
                passed.contains(resource),
                "deploy/overlays/{overlay}: {resource} not checked: {passed:?}"
            );
        }
    }
    // The check bites: a scan Pod taking the token from its environment fails it.
    let mut weak = scan_pod;
    weak["spec"]["containers"][0]["envFrom"] = json!([{"secretRef": {"name": launch.env_name()}}]);
    let (_, failed) = ckv_k8s_35(&[weak]);
    assert_eq!(failed, BTreeSet::from([scan_pod_name]));
}
