# Build entry points for `sam build` (template.yaml: Metadata BuildMethod: makefile).
#
# SAM runs `make --makefile <this file> build-<LogicalId>` once per function, with
# ARTIFACTS_DIR=.aws-sam/build/<LogicalId>. Every build-* target runs the SAME
# `cargo lambda build` of the function packages, in this workspace and with its own
# target directory. The first target compiles the dependency tree (AWS SDK and all) once;
# for the other three cargo finds everything fresh, so they only collect their binary.
#
# How the template keeps SAM from copying the workspace: CodeUri is the function's crate
# directory (a few KB, which SAM copies to a scratch dir and we ignore), ContextPath points SAM
# at this Makefile and WorkingDirectory runs make here. No build_in_source needed, and target/
# is never copied.
#
# Concurrency: cargo-lambda MOVES each binary out of target/<triple>/release after cargo has
# released its lock, so two of these builds must not overlap (`sam build --parallel`). Each
# target therefore holds an flock(1) around its build where flock exists (Linux), and
# collects its binary from a private --lambda-dir. samconfig.toml keeps parallel off anyway:
# all the work is one cargo build, so SAM-level parallelism gains nothing.

SHELL := /bin/sh
ROOT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))

CARGO ?= cargo
# The template deploys arm64 (Graviton). Override only for a local experiment, e.g.
# `CARGO_LAMBDA_TARGET=--x86-64 sam build`: such artifacts do not run on the arm64 functions.
CARGO_LAMBDA_TARGET ?= --arm64
# Extra `cargo lambda build` flags, e.g. CARGO_LAMBDA_FLAGS="--compiler cargo".
CARGO_LAMBDA_FLAGS ?=

# The deployable packages: NOT the whole workspace, whose test kit (tests/) has binaries and
# dependencies of its own that must neither be cross-compiled nor unified into the functions.
FUNCTION_PACKAGES := customer-webhook subscription-webhook invoice-webhook credit-note-webhook redrive backfill salesforce-account
CARGO_LAMBDA_BUILD = $(CARGO) lambda build --release $(CARGO_LAMBDA_TARGET) $(CARGO_LAMBDA_FLAGS) \
	$(addprefix --package ,$(FUNCTION_PACKAGES))

# $(call sam-build,<binary name>): build all functions once, copy <binary name>'s bootstrap.
define sam-build
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: build-* targets are run by 'sam build'" >&2; exit 2; }
	@$(CARGO) lambda --version >/dev/null 2>&1 || { echo "cargo-lambda is not installed: pip install cargo-lambda (it brings Zig)" >&2; exit 127; }
	@set -eu; \
	cd "$(ROOT)"; \
	lambda_dir=$$(mktemp -d); \
	trap 'rm -rf "$$lambda_dir"' EXIT; \
	set -- $(CARGO_LAMBDA_BUILD) --lambda-dir "$$lambda_dir"; \
	echo "$@: $$* (compiles once; later targets reuse cargo's cache)"; \
	if command -v flock >/dev/null 2>&1; then \
		lock_dir="$${CARGO_TARGET_DIR:-$(ROOT)/target}"; mkdir -p "$$lock_dir"; \
		flock "$$lock_dir/.sam-build.lock" "$$@"; \
	else \
		"$$@"; \
	fi; \
	mkdir -p "$(ARTIFACTS_DIR)"; \
	cp "$$lambda_dir/$(1)/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"; \
	chmod 755 "$(ARTIFACTS_DIR)/bootstrap"
endef

.PHONY: build-CustomerFunction build-SubscriptionFunction build-InvoiceFunction build-CreditNoteFunction build-RedriveFunction build-BackfillFunction build-SalesforceAccountFunction
build-CustomerFunction:
	$(call sam-build,customer-webhook)
build-SubscriptionFunction:
	$(call sam-build,subscription-webhook)
build-InvoiceFunction:
	$(call sam-build,invoice-webhook)
build-CreditNoteFunction:
	$(call sam-build,credit-note-webhook)
build-RedriveFunction:
	$(call sam-build,redrive)
build-BackfillFunction:
	$(call sam-build,backfill)
build-SalesforceAccountFunction:
	$(call sam-build,salesforce-account)

# Not used by SAM: the same build into target/lambda/<binary>/bootstrap.
.PHONY: lambda
lambda:
	cd "$(ROOT)" && $(CARGO_LAMBDA_BUILD)

.PHONY: validate-template
validate-template:
	"$(ROOT)/scripts/validate-template.sh"
