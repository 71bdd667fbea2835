import sys

from scrybe_kms.cli import main

sys.exit(main())
