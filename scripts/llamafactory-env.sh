#!/usr/bin/env bash
# Makes LLaMA-Factory's own environment at $1, once (the tests' llamafactory loader runs in it): exactly the pins of
# requirements-llamafactory.txt, and a stand-in for torchaudio (scripts/llamafactory/torchaudio.py says why). A
# marker written last says it is whole, so a killed install is made again. About 3 minutes and 1.5 GB.
set -euo pipefail
target=$1
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
[[ -f "$target/.complete" ]] && exit 0
rm -rf "$target"
mkdir -p "$(dirname "$target")"
echo "Installing LLaMA-Factory's environment for its loader test (once, about 3 minutes)..."
"$python" -m venv "$target"
"$target/bin/python" -m pip install --quiet --no-deps -r requirements-llamafactory.txt
site=$("$target/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
cp scripts/llamafactory/torchaudio.py "$site/torchaudio.py"
"$target/bin/python" -c 'import llamafactory.data'  # it imports: the environment is usable
touch "$target/.complete"
