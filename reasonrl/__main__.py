from reasonrl.cli import main

raise SystemExit(main())
