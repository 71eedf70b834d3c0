"""``python -m opsnb.demo.generate [--out DIR]``: regenerate the demo's recorded incidents."""

from opsnb.demo.generate import main

raise SystemExit(main())
