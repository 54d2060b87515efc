from demandcast.cli import main

raise SystemExit(main())
