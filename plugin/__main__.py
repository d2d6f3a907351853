"""Entry point of the component provider, run by Pulumi's Python language host: ``python plugin/ <engine>``.

The components come from this checkout (``components/`` beside this folder), so the package served is
the one at the tag ``pulumi package add`` named; ``requirements.txt`` installs their dependencies.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "components"))

from pulumi_vllm.provider.host import main

main()
