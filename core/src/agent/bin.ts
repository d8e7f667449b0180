#!/usr/bin/env node
// The package's `ff-agent` command (package.json `bin`). It only loads main.js, so the VM image can keep
// starting `node dist/agent/main.js` directly, and main.ts stays free of a shebang.
import './main.js';
