# Two commands do all set-up on a fresh machine:
#   make demo   the textbook chapter on every backend, side by side
#   make test   the whole test suite (conformance on torch, keras, paddle and flax, then on
#               Keras over JAX and over torch; mypy; the docs site built strictly and
#               checked in a headless browser)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test fuzz bench docs zoo setup clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -c constraints.txt -e ".[all,test,docs,zoo]"
	@# The docs' browser test drives Debian's headless Chromium; without root or apt it says why it skips.
	command -v chromedriver >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || echo "no Chromium: the browser test will skip"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/unified-params demo

# Keras picks its engine once, at import: the suite runs on Keras over TensorFlow in the
# main run, then once more per engine, in a process of its own (UP_TEST_BACKENDS names it),
# with torch beside it: the cases between two frameworks (ports, files, round trips) run on
# each engine too; Keras on JAX also beside Flax NNX, the other JAX framework (torch -> NNX ->
# Keras -> torch round trips in one JAX process; about 50 s more).
ENGINE_TESTS := tests/conformance tests/test_registry.py tests/test_internals.py tests/test_testing.py tests/test_pooling.py \
	tests/test_upsampling.py tests/test_spectral_wrapper.py tests/test_transformers.py tests/test_load_mapping.py

# Tests that start processes of their own (benchmarks, the CLI, the pytest plugin, README
# scripts, the two-process sharded launch, oneDNN's re-run, notebook kernels, the docs
# build and its browser, killed writers, frameworks' own device set-ups) spend most of
# their time in them.
PROCESS_TESTS := tests/test_benchmarks.py tests/test_cli.py tests/test_plugin.py tests/test_readme.py \
	tests/test_distributed.py tests/test_flatten_order.py tests/test_notebook.py tests/test_site.py \
	tests/test_sharded_frameworks.py tests/reliability/test_faults.py

# The property-based conformance tests (two properties, 200 examples each on every backend,
# about 140 s) run beside the main run too, with the process tests: on 2 cores the main run
# took 879 s and the shell beside it 636 s.
BALANCED_TESTS := tests/reliability/test_properties.py

# The engine runs, then the process tests, go on beside the main run, in one background
# shell (the main run alone leaves a core idle much of the time); their output follows the
# main run's. Any run's failing exit code is make's (pytest's 5, when it collected nothing,
# included).
BESIDE_LOG := $(VENV)/beside-the-main-run.log

test: $(STAMP)
	@( UP_TEST_BACKENDS=keras-jax,torch,flax $(BIN)/python -m pytest -q -p no:cacheprovider $(ENGINE_TESTS); jax=$$?; \
	   UP_TEST_BACKENDS=keras-torch,torch $(BIN)/python -m pytest -q -p no:cacheprovider $(ENGINE_TESTS); torch=$$?; \
	   $(BIN)/python -m pytest -q -p no:cacheprovider $(PROCESS_TESTS) $(BALANCED_TESTS); procs=$$?; \
	   for code in $$jax $$torch $$procs; do [ $$code -ne 0 ] && exit $$code; done; exit 0 \
	 ) > $(BESIDE_LOG) 2>&1 & beside=$$!; \
	$(BIN)/python -m pytest $(addprefix --ignore=,$(PROCESS_TESTS) $(BALANCED_TESTS)); main=$$?; \
	wait $$beside; rest=$$?; \
	echo "== Beside the main run: Keras on JAX, Keras on torch (UP_TEST_BACKENDS=keras-jax,torch,flax and keras-torch,torch), then the tests that start processes and the property-based ones =="; \
	cat $(BESIDE_LOG); \
	[ $$main -ne 0 ] && exit $$main; exit $$rest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# A longer, randomised run of the property-based conformance tests.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest tests/reliability/test_properties.py

# Benchmarks: ratios against baselines measured in the same run; writes docs/benchmarks.md.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Every model of the zoo gallery round-trips; writes docs/porting-gallery.md.
zoo: $(STAMP)
	$(BIN)/python -m tests.zoo.gallery

# Regenerate the generated documentation pages.
docs: $(STAMP)
	$(BIN)/python docs/gen_chapter.py
	$(BIN)/python docs/gen_notebook.py
	$(BIN)/python -m tests.reliability.errors_doc
	$(BIN)/unified-params conformance --write docs/conformance.md \
		--backends $$($(BIN)/python -c "from unified_params.backends import registry; print(','.join(registry.targets()))")
