"""Production without disaster recovery: the stack file the deploy-mechanics tests run against.

Those tests (``tests/test_deploy_run.py``, ``tests/test_faults_deploy.py``) follow one region's stacks
call by call; the DR regions' stacks and the replication switch-on are tested in
``tests/test_deploy_regions.py`` and on the emulator.
"""

import runpy
from pathlib import Path

_PRODUCTION = runpy.run_path(str(Path(__file__).resolve().parents[3] / "stacks" / "production.py"))["SETTINGS"]
SETTINGS = {k: v for k, v in _PRODUCTION.items() if k != "disaster_recovery_regions"}
