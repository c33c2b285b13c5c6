# manipstack: `make demo` and `make test` each set up everything they need from a clean clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@if ! ldconfig -p | grep -q libusb-1.0; then \
	  echo "installing libusb-1.0-0 (needed by open3d)"; \
	  (apt-get install -y libusb-1.0-0 || (apt-get update && apt-get install -y libusb-1.0-0)); \
	fi
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/pip install -q -e ".[dev,ray]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/manipstack demo --out reports/demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest tests

bench: $(STAMP)
	$(BIN)/manipstack bench sim

clean:
	rm -rf $(VENV) runs reports
