"""`python -m nsproxy`."""

import sys

from nsproxy.cli import main

sys.exit(main())
