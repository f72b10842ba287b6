import sys

from cityguard.cli.main import main

sys.exit(main())
