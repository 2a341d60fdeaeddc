#!/usr/bin/env node
/** The lab's entry point: `node dist/test/lab/cli/main.js lab up|exec|ls|down|prepare|demo`, and every ovmigrate command with the lab plugged in. */
import { ovmigrateProgram, runProgram } from '../../../introspect/cli/program.js';
import { labPlugs } from '../plugs.js';

runProgram(ovmigrateProgram(labPlugs()));
