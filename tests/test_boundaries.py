"""Architecture rules: the web process never loads torch or transformers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_importing_the_web_app_does_not_import_torch_or_transformers(tmp_path):
    probe = (
        "import sys\n"
        "from app.core.config import Settings\n"
        "from app.main import create_app\n"
        f"create_app(Settings(mode='test', data_dir={str(tmp_path)!r}, _env_file=None))\n"
        "import app.cli, app.demo.workspace\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'transformers', 'peft'})\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_no_module_in_app_imports_torch_or_transformers():
    offenders = [
        str(path.relative_to(ROOT)) for path in (ROOT / "app").rglob("*.py")
        if any(line.lstrip().startswith(("import torch", "from torch", "import transformers", "from transformers",
                                         "import peft", "from peft"))
               for line in path.read_text().splitlines())
    ]
    assert offenders == []
