# Set-up and entry points. Every target creates .venv if missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-dev
BENCH_STAMP := $(VENV)/.installed-bench
DOCS_STAMP := $(VENV)/.installed-docs
FASHION_DIR := /usr/share/datasets/fashion-mnist

.PHONY: run test test-all docs bench bench-scaling fashion-mnist emoji-font audio-tools chromium clean

# The test install includes docs (the strict site build is a test), lightning and hf (their integrations are tested).
# torch is pinned to the CPU build cached on these machines: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,text,graph,multimodal,docs,lightning,hf]'
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PIP) install -q -e '.[dev,text,graph,multimodal,bench]'
	touch $(BENCH_STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PIP) install -q -e '.[dev,text,graph,multimodal,docs]'
	touch $(DOCS_STAMP)

# The documentation site, strictly (a broken link or docstring reference fails): mkdocs.yml, into site/.
docs: $(DOCS_STAMP)
	$(VENV)/bin/mkdocs build --strict --site-dir site

# Fashion-MNIST comes from Debian's dataset-fashion-mnist package; install it when apt is available.
fashion-mnist:
	@if [ -e $(FASHION_DIR)/train-images-idx3-ubyte.gz ] || [ -e $(FASHION_DIR)/train-images-idx3-ubyte ]; then \
		echo "Fashion-MNIST found in $(FASHION_DIR)"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -q && $$SUDO apt-get install -y -q dataset-fashion-mnist; \
	else \
		echo "apt-get not available: download the four Fashion-MNIST IDX files and run"; \
		echo "  $(VENV)/bin/contrastkit train --set data.data_dir=PATH"; \
	fi

# The emoji data set renders Debian's Noto Color Emoji font (SIL OFL 1.1); its tests skip without it.
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
emoji-font:
	@if [ -e $(EMOJI_FONT) ]; then \
		echo "Noto Color Emoji found"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q --no-install-recommends fonts-noto-color-emoji || \
		{ $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends fonts-noto-color-emoji; }; \
	else \
		echo "apt-get not available: the emoji data set needs $(EMOJI_FONT) (or data.font_path)"; \
	fi

# Speech and music for the multimodal data: espeak-ng speaks the emoji-speech captions, fluidsynth with the
# TimGM6mb soundfont plays the music-sheets scores; --no-install-recommends keeps it to a few MB. Tests skip without them.
AUDIO_TOOLS := espeak-ng fluidsynth timgm6mb-soundfont
audio-tools:
	@if command -v espeak-ng >/dev/null 2>&1 && command -v fluidsynth >/dev/null 2>&1 && [ -e /usr/share/sounds/sf2/TimGM6mb.sf2 ]; then \
		echo "espeak-ng, fluidsynth and TimGM6mb found"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q --no-install-recommends $(AUDIO_TOOLS) || \
		{ $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends $(AUDIO_TOOLS); } || \
		echo "$(AUDIO_TOOLS) could not be installed: the speech and music tests will skip"; \
	else \
		echo "apt-get not available: the speech and music tests will skip"; \
	fi

# The run report's test renders report.html in headless Chromium (Debian's chromium); it skips without it.
chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "Chromium found"; \
	elif command -v apt-get >/dev/null 2>&1; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get install -y -q --no-install-recommends chromium || \
		{ $$SUDO apt-get update -q && $$SUDO apt-get install -y -q --no-install-recommends chromium; } || \
		echo "chromium could not be installed: the report's browser test will skip"; \
	else \
		echo "apt-get not available: the report's browser test will skip"; \
	fi

run: $(STAMP) fashion-mnist
	$(VENV)/bin/contrastkit train

test: $(STAMP) emoji-font audio-tools chromium
	$(PY) -m pytest -q

test-all: $(STAMP) fashion-mnist emoji-font audio-tools chromium
	$(PY) -m pytest -q -m ""

bench: $(BENCH_STAMP) fashion-mnist
	$(PY) benchmarks/image_ssl.py

# InfoNCE time and memory against batch size, beside the peer libraries of the bench extra.
bench-scaling: $(BENCH_STAMP)
	$(PY) benchmarks/loss_scaling.py

clean:
	rm -rf $(VENV) runs build site *.egg-info
