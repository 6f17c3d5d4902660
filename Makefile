# One entry point for the project's checks. CI runs `make test` (see .ci/run).
# Tool versions are pinned here.

STATICCHECK_VERSION := v0.8.2
GOBIN := $(shell go env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
PKGS := ./...

.PHONY: test check fmt vet staticcheck tidy unit race bench sim fuzz build

## test: everything CI checks: formatting, vet, staticcheck, go.mod tidiness, race-enabled tests.
test: check race

## check: the static checks only.
check: fmt vet staticcheck tidy

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	go vet $(PKGS)

$(STATICCHECK):
	@echo "staticcheck $(STATICCHECK_VERSION) is not in $(GOBIN): installing it with go install (once)"
	GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	$(STATICCHECK) $(PKGS)

tidy:
	@# The backups go to a directory of this run's own (mktemp), so that
	@# concurrent runs in other checkouts cannot mix them up.
	@bak=$$(mktemp -d "$${TMPDIR:-/tmp}/clearinghouse-tidy.XXXXXX") || exit 1; \
	trap 'rm -rf "$$bak"' EXIT; \
	cp go.mod go.sum "$$bak"/ && \
	go mod tidy && \
	if ! git diff --quiet -- go.mod go.sum; then \
		echo "go.mod/go.sum are not tidy; run 'go mod tidy' and commit:"; git diff -- go.mod go.sum | head -40; \
		cp "$$bak"/go.mod "$$bak"/go.sum .; exit 1; fi

## unit: tests without the race detector (faster).
unit:
	go test $(PKGS)

## race: tests with the race detector, as CI runs them.
race:
	go test -race -timeout 20m $(PKGS)

## bench: the benchmarks of docs/benchmarks.md, one command per section
## (several minutes; not part of `make test`).
bench:
	go test -run '^$$' -bench BenchmarkIngest -benchtime 20000x -count 3 ./node/
	go test -run '^$$' -bench BenchmarkValidate -benchmem ./protocol/
	go test -run '^$$' -bench BenchmarkValidateOnFreshGoroutine -count 3 ./node/
	go test -run '^$$' -bench BenchmarkPut -benchtime 2000x ./store/
	go test -run '^$$' -bench . -benchmem -count 3 ./protocol/gov/
	go test -run '^$$' -bench 'BenchmarkDeriveMembers|BenchmarkCheckMembership' ./protocol/
	go test -run '^$$' -bench 'BenchmarkSyncCatchUp|BenchmarkReconcile' -benchtime 3x ./node/
	go test -run '^$$' -bench 'BenchmarkExport|BenchmarkImport' -benchtime 3x ./opendata/
	go test -run '^$$' -bench BenchmarkRestart -benchtime 3x ./node/
	go test -run '^$$' -bench BenchmarkProcessPage -benchtime 20x ./node/api/
	go run ./cmd/clearinghouse testnet bench --nodes 50 --rate 10 --duration 20s

## sim: the full simulated network (500 nodes, 100 records, virtual time;
## docs/benchmarks.md section 8); `make test` runs it with 50 nodes.
sim:
	go test -count=1 -run 'TestSim' -v -timeout 60m ./testnet/simulation/ -sim.nodes 500 -sim.records 100

## fuzz: every fuzz target of the project, found in the code (func FuzzX in
## a _test.go file), FUZZTIME each (the seeds run in `make test`). An input
## that fails is written to that package's testdata/fuzz/FuzzX: commit it
## with the fix, so the seeds keep checking it.
FUZZTIME ?= 60s
fuzz:
	@set -e; for f in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$t in ./$$(dirname $$f), $(FUZZTIME)"; \
			go test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f); \
		done; \
	done

## build: the static binary, into ./bin (or BIN=path). deploy/Containerfile
## runs this target too, so the image holds the same binary.
BIN ?= bin/clearinghouse
build:
	CGO_ENABLED=0 go build -trimpath -o $(BIN) ./cmd/clearinghouse
