# Picket's developer entry points. `make run` and `make test` are the two that matter.

# Tests create one fresh database per test on this server (the user must be allowed to CREATE DATABASE).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
# Database the compile-time query checks run against when regenerating .sqlx/ (see `make sqlx-prepare`).
SQLX_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/picket_sqlx
SQLX_CLI_VERSION := 0.8.6

# Builds use the committed .sqlx/ query data, so no database is needed to compile.
export SQLX_OFFLINE := true

.PHONY: run test lint fmt sqlx-prepare sqlx-check sqlx-cli bench

## Start Picket on its embedded defaults (private PostgreSQL under .picket/, API on 127.0.0.1:7300).
run:
	cargo run -p picket-cli --bin picket -- run

## Run the whole test suite against the machine's PostgreSQL.
test:
	./.ci/postgres-up
	DATABASE_URL=$(TEST_DATABASE_URL) cargo test --workspace --all-targets

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
bench:
	./.ci/postgres-up
	DATABASE_URL=$(TEST_DATABASE_URL) cargo run --release -p picket-bench -- all
