import sys
from pathlib import Path

# harness.py and the case modules import each other by module name.
sys.path.insert(0, str(Path(__file__).resolve().parent))
