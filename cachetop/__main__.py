import sys

from cachetop.cli import main

sys.exit(main())
