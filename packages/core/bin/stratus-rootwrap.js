#!/usr/bin/env node
// The built program lives in dist/; this file only gives it a stable path for sudoers.
import '../dist/exec/rootwrap-cli.js';
